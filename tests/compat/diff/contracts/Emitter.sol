// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice Emits logs with 0..4 topics and arbitrary data.
contract Emitter {
    event Indexed(address indexed sender, uint256 indexed index, bytes32 indexed tag, bytes data);

    uint256 public emitted; // slot 0

    /// LOG0..LOG4 with the first `topicCount` topics.
    function emitRaw(uint256 topicCount, bytes32[4] calldata topics, bytes calldata data) external {
        emitted += 1;
        bytes memory d = data;
        bytes32 t0 = topics[0];
        bytes32 t1 = topics[1];
        bytes32 t2 = topics[2];
        bytes32 t3 = topics[3];
        assembly {
            let ptr := add(d, 32)
            let len := mload(d)
            switch topicCount
            case 0 { log0(ptr, len) }
            case 1 { log1(ptr, len, t0) }
            case 2 { log2(ptr, len, t0, t1) }
            case 3 { log3(ptr, len, t0, t1, t2) }
            default { log4(ptr, len, t0, t1, t2, t3) }
        }
    }

    /// `count` Indexed events derived from `seed`.
    function emitMany(uint256 count, bytes32 seed) external {
        for (uint256 i = 0; i < count; i++) {
            emit Indexed(msg.sender, i, keccak256(abi.encode(seed, i)), abi.encodePacked(seed, i));
        }
        emitted += count;
    }
}
