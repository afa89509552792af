// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Fails in the different ways a contract can fail.
contract Reverter {
    error Custom(uint256 code, string why);

    event Caught(bytes reason);

    uint256 public touched; // slot 0, written before most failures (must be rolled back)
    uint256 public caught;  // slot 1

    /// Rejects plain ETH transfers with a reason.
    receive() external payable {
        revert("Reverter: no ETH accepted");
    }

    function failReason(string calldata reason) external {
        touched += 1;
        revert(reason);
    }

    /// Succeeds (and writes) for even x, reverts with a reason for odd x.
    function requireEven(uint256 x) external {
        touched = x;
        require(x % 2 == 0, "Reverter: odd");
    }

    function failCustom(uint256 code) external {
        touched += 1;
        revert Custom(code, "custom error");
    }

    /// Panics: 0 assert, 1 division by zero, 2 array index out of bounds, 3 arithmetic overflow.
    function failPanic(uint256 kind, uint256 operand) external returns (uint256) {
        touched += 1;
        uint256[] memory empty = new uint256[](0);
        if (kind == 0) assert(operand == type(uint256).max);
        if (kind == 1) return 1 / (operand - operand);
        if (kind == 2) return empty[operand];
        return type(uint256).max + operand + 1;
    }

    /// INVALID opcode: consumes all remaining gas.
    function failInvalid() external {
        touched += 1;
        assembly { invalid() }
    }

    /// An inner call reverts and is caught: only the inner writes roll back.
    function catchInner(string calldata reason) external {
        try this.failReason(reason) {
        } catch (bytes memory data) {
            caught += 1;
            emit Caught(data);
        }
    }
}
