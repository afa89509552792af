// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Writes arbitrary storage slots; accepts ETH.
contract Storage {
    event Received(address indexed from, uint256 value);

    constructor(uint256 slot, uint256 value) payable {
        assembly { sstore(slot, value) }
    }

    receive() external payable {
        emit Received(msg.sender, msg.value);
    }

    function write(uint256 slot, uint256 value) external {
        assembly { sstore(slot, value) }
    }

    /// Writes slots start..start+count-1 with keccak256(seed, i).
    function writeRange(uint256 start, uint256 count, bytes32 seed) external {
        for (uint256 i = 0; i < count; i++) {
            bytes32 value = keccak256(abi.encode(seed, i));
            assembly { sstore(add(start, i), value) }
        }
    }

    /// Zeroes a slot (exercises the SSTORE refund path).
    function clear(uint256 slot) external {
        assembly { sstore(slot, 0) }
    }
}
