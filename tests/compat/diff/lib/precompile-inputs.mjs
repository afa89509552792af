// Inputs for the precompiles 0x01..0x09, valid and invalid, built from the PRNG.
import { concatHex, keccak256, numberToHex, padHex } from 'viem';
import { sign } from 'viem/accounts';

export const PRECOMPILES = {
  ecrecover: '0x0000000000000000000000000000000000000001',
  sha256: '0x0000000000000000000000000000000000000002',
  ripemd160: '0x0000000000000000000000000000000000000003',
  identity: '0x0000000000000000000000000000000000000004',
  modexp: '0x0000000000000000000000000000000000000005',
  bn254Add: '0x0000000000000000000000000000000000000006',
  bn254Mul: '0x0000000000000000000000000000000000000007',
  bn254Pairing: '0x0000000000000000000000000000000000000008',
  blake2f: '0x0000000000000000000000000000000000000009',
};

const word = (v) => numberToHex(v, { size: 32 });

// --- alt_bn128 (bn254) G1 arithmetic, affine coordinates, just enough to build inputs ---
const P = 0x30644e72e131a029b85045b68181585d97816a916871ca8d3c208c16d87cfd47n; // field modulus
const R = 0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001n; // group order
const G1 = [1n, 2n];
// G2 generator, EIP-197 encoding order: x.imaginary, x.real, y.imaginary, y.real.
const G2 = [
  11559732032986387107991004021392285783925812861821192530917403151452391805634n,
  10857046999023057135944570762232829481370756359578518086990519993285655852781n,
  4082367875863433681332203403145435568316851327593401208105741076214120093531n,
  8495653923123431417604973247489272438418190587263600148770280649306958101930n,
];

const mod = (a) => ((a % P) + P) % P;
function inv(a) {
  // Fermat: a^(P-2)
  let result = 1n, base = mod(a), e = P - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % P;
    base = (base * base) % P;
    e >>= 1n;
  }
  return result;
}
function g1Add(p, q) {
  if (p === null) return q;
  if (q === null) return p;
  if (p[0] === q[0] && mod(p[1] + q[1]) === 0n) return null;
  const l = p[0] === q[0] ? mod(3n * p[0] * p[0] * inv(2n * p[1])) : mod((q[1] - p[1]) * inv(q[0] - p[0]));
  const x = mod(l * l - p[0] - q[0]);
  return [x, mod(l * (p[0] - x) - p[1])];
}
function g1Mul(p, k) {
  let result = null, addend = p;
  for (let e = k % R; e > 0n; e >>= 1n) {
    if (e & 1n) result = g1Add(result, addend);
    addend = g1Add(addend, addend);
  }
  return result;
}
const g1Neg = (p) => (p === null ? null : [p[0], mod(-p[1])]);
const encodeG1 = (p) => (p === null ? concatHex([word(0n), word(0n)]) : concatHex([word(p[0]), word(p[1])]));
const encodeG2 = () => concatHex(G2.map(word));

function randomG1(rng) {
  return g1Mul(G1, rng.bigint(64) + 1n);
}

// --- builders; each returns { input, label } ---

function ecrecoverInput(rng) {
  const privateKey = keccak256(rng.hex(32));
  const hash = rng.hex(32);
  const variant = rng.weighted([[6, 'valid'], [1, 'bad-v'], [1, 'zero-s'], [1, 'short']]);
  // signatures are deterministic (RFC 6979), so the input stays seed-determined
  return sign({ hash, privateKey }).then(({ r, s, v }) => {
    if (variant === 'short') return { input: concatHex([hash, word(v)]), label: 'ecrecover short input' };
    const vWord = variant === 'bad-v' ? word(29n) : word(v);
    const sWord = variant === 'zero-s' ? word(0n) : padHex(s, { size: 32 });
    return { input: concatHex([hash, vWord, padHex(r, { size: 32 }), sWord]), label: `ecrecover ${variant}` };
  });
}

function modexpInput(rng) {
  const bLen = rng.range(0, 40), eLen = rng.range(0, 33), mLen = rng.range(0, 40);
  const modulus = rng.chance(0.1) ? `0x${'00'.repeat(mLen)}` : rng.hex(mLen); // zero modulus sometimes
  const input = concatHex([word(BigInt(bLen)), word(BigInt(eLen)), word(BigInt(mLen)), rng.hex(bLen), rng.hex(eLen), modulus]);
  return { input, label: `modexp ${bLen}/${eLen}/${mLen}` };
}

function bn254AddInput(rng) {
  if (rng.chance(0.15)) return { input: concatHex([word(1n), word(3n), encodeG1(G1)]), label: 'bn254 add, point off curve' };
  const p = randomG1(rng);
  const q = rng.chance(0.2) ? g1Neg(p) : randomG1(rng); // sometimes P + (-P) = infinity
  return { input: concatHex([encodeG1(p), encodeG1(q)]), label: 'bn254 add' };
}

function bn254MulInput(rng) {
  if (rng.chance(0.15)) return { input: concatHex([word(2n), word(2n), word(5n)]), label: 'bn254 mul, point off curve' };
  const scalar = rng.pick([0n, 1n, R, rng.bigint(256)]);
  return { input: concatHex([encodeG1(randomG1(rng)), word(scalar)]), label: 'bn254 mul' };
}

function bn254PairingInput(rng) {
  const variant = rng.weighted([[4, 'identity'], [2, 'not-identity'], [1, 'empty'], [1, 'bad-length'], [1, 'off-curve']]);
  const a = rng.bigint(64) + 1n;
  const pA = g1Mul(G1, a);
  switch (variant) {
    case 'identity': // e(aG1, G2) * e(-aG1, G2) = 1
      return { input: concatHex([encodeG1(pA), encodeG2(), encodeG1(g1Neg(pA)), encodeG2()]), label: 'bn254 pairing = 1' };
    case 'not-identity':
      return { input: concatHex([encodeG1(pA), encodeG2()]), label: 'bn254 pairing = 0' };
    case 'empty':
      return { input: '0x', label: 'bn254 pairing, empty' };
    case 'bad-length':
      return { input: concatHex([encodeG1(pA), encodeG2(), '0x00']), label: 'bn254 pairing, bad length' };
    default:
      return { input: concatHex([word(1n), word(3n), encodeG2()]), label: 'bn254 pairing, off curve' };
  }
}

function blake2fInput(rng) {
  const rounds = rng.pick([0, 1, 12, rng.range(0, 64)]);
  const variant = rng.weighted([[6, 'valid'], [1, 'bad-flag'], [1, 'bad-length']]);
  const flag = variant === 'bad-flag' ? '0x02' : rng.pick(['0x00', '0x01']);
  const body = concatHex([numberToHex(rounds, { size: 4 }), rng.hex(64), rng.hex(128), rng.hex(16), flag]);
  const input = variant === 'bad-length' ? concatHex([body, '0x00']) : body;
  return { input, label: `blake2f ${variant} rounds=${rounds}` };
}

/** A random (precompile, input) pair: { address, name, input, label }. */
export async function randomPrecompileCall(rng) {
  const name = rng.pick(Object.keys(PRECOMPILES));
  const build = {
    ecrecover: ecrecoverInput,
    sha256: (r) => ({ input: r.hex(r.range(0, 200)), label: 'sha256' }),
    ripemd160: (r) => ({ input: r.hex(r.range(0, 200)), label: 'ripemd160' }),
    identity: (r) => ({ input: r.hex(r.range(0, 300)), label: 'identity' }),
    modexp: modexpInput,
    bn254Add: bn254AddInput,
    bn254Mul: bn254MulInput,
    bn254Pairing: bn254PairingInput,
    blake2f: blake2fInput,
  }[name];
  const { input, label } = await build(rng);
  return { address: PRECOMPILES[name], name, input, label };
}

// Exposed for the self-check in differential.mjs --self-check.
export const bn254 = { G1, G2, P, R, g1Add, g1Mul, g1Neg, encodeG1, encodeG2 };
