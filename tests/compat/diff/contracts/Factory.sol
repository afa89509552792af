// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Created by Factory.
contract Child {
    uint256 public value;  // slot 0
    address public parent; // slot 1

    constructor(uint256 v) payable {
        value = v;
        parent = msg.sender;
    }
}

/// @notice Its constructor always reverts.
contract FailingChild {
    constructor() {
        revert("FailingChild: constructor reverts");
    }
}

/// @notice Creates children with CREATE and CREATE2 (forwarding value).
contract Factory {
    event Created(address indexed child, bool indexed viaCreate2, bytes32 salt);
    event CreateFailed(bytes reason);

    uint256 public created; // slot 0
    uint256 public failed;  // slot 1

    function create(uint256 v) external payable returns (address child) {
        child = address(new Child{value: msg.value}(v));
        created += 1;
        emit Created(child, false, bytes32(0));
    }

    /// Reverts when the salt/argument pair was used before (address collision).
    function create2(bytes32 salt, uint256 v) external payable returns (address child) {
        child = address(new Child{salt: salt, value: msg.value}(v));
        created += 1;
        emit Created(child, true, salt);
    }

    /// A failing CREATE inside try/catch: the factory's nonce still advances.
    function createFailing() external {
        try new FailingChild() {
        } catch (bytes memory reason) {
            failed += 1;
            emit CreateFailed(reason);
        }
    }
}
