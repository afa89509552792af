// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @notice STATICCALLs a precompile with a given input and gas, records and logs the result.
contract Precompiles {
    event Called(address indexed precompile, bool success, bytes output);

    uint256 public calls;                      // slot 0
    mapping(uint256 => bytes32) public results; // slot 1: results[i] = keccak256(success, output)

    function invoke(address precompile, bytes calldata input, uint256 gasLimit) external {
        (bool success, bytes memory output) = precompile.staticcall{gas: gasLimit}(input);
        results[calls] = keccak256(abi.encodePacked(success, output));
        calls += 1;
        emit Called(precompile, success, output);
    }
}
