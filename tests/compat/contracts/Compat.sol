// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Small contract exercised by the compatibility suite: storage, events,
///         require-style reverts and a custom error.
contract Compat {
    error Unauthorized(address caller, uint256 code);

    event Stored(address indexed writer, uint256 indexed key, uint256 value);
    event Note(bytes32 indexed tag, string text);

    uint256 public stored;                     // slot 0
    address public owner;                      // slot 1
    mapping(uint256 => uint256) public cells;  // slot 2

    constructor(uint256 initial) payable {
        stored = initial;
        owner = msg.sender;
    }

    /// Writes slot 0 and logs it under key 0.
    function store(uint256 value) external {
        stored = value;
        emit Stored(msg.sender, 0, value);
    }

    /// Writes cells[key]; reverts with a reason string when value is zero.
    function setCell(uint256 key, uint256 value) external {
        require(value != 0, "Compat: value must be non-zero");
        cells[key] = value;
        emit Stored(msg.sender, key, value);
    }

    function note(bytes32 tag, string calldata text) external {
        emit Note(tag, text);
    }

    /// Reverts with the custom error unless called by the deployer.
    function onlyOwner(uint256 code) external view returns (bool) {
        if (msg.sender != owner) revert Unauthorized(msg.sender, code);
        return true;
    }
}
