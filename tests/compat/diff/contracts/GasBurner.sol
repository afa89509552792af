// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Burns gas in loops; given a small gas limit it runs out of gas.
contract GasBurner {
    uint256 public sink; // slot 0

    /// `iterations` rounds of keccak256, result stored in slot 0.
    function burn(uint256 iterations) external {
        bytes32 acc = bytes32(sink);
        for (uint256 i = 0; i < iterations; i++) {
            acc = keccak256(abi.encodePacked(acc, i));
        }
        sink = uint256(acc);
    }

    /// Writes slots start..start+count-1 (SSTORE-heavy).
    function burnStorage(uint256 start, uint256 count) external {
        for (uint256 i = 0; i < count; i++) {
            assembly { sstore(add(start, i), add(i, 1)) }
        }
    }
}
