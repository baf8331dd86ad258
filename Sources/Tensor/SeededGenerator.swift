#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A deterministic, seedable pseudo-random generator (xoshiro256**, seeded
/// through SplitMix64) for weight initialisation, dropout and shuffling.
///
/// Not cryptographically secure: never use it for MPC masks or keys.
/// Reference: Blackman & Vigna, "Scrambled linear pseudorandom number
/// generators", 2018 (https://prng.di.unimi.it).
public final class SeededGenerator: RandomNumberGenerator {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64
    /// A second normal sample from the last Box-Muller draw.
    private var spareGaussian: Float?

    /// The seed this generator was created with (for logging reproducible runs).
    public let seed: UInt64

    /// Creates a generator whose stream is fully determined by `seed`.
    public init(seed: UInt64) {
        self.seed = seed
        var x = SplitMix64(seed: seed)
        s0 = x.next()
        s1 = x.next()
        s2 = x.next()
        s3 = x.next()
    }

    /// The next 64 random bits.
    @inline(__always)
    public func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform Float in `[0, 1)` with 24 random bits.
    @inline(__always)
    public func nextFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box-Muller, computed in Double).
    public func nextGaussian() -> Float {
        if let g = spareGaussian {
            spareGaussian = nil
            return g
        }
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2 * log(u1)).squareRoot()
        let theta = 2 * Double.pi * u2
        spareGaussian = Float(r * sin(theta))
        return Float(r * cos(theta))
    }

    /// A derived generator with an independent stream (for per-layer or per-worker use).
    public func split() -> SeededGenerator { SeededGenerator(seed: next()) }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny and seedable; seeds `SeededGenerator` and shuffles data.
/// Not cryptographically secure.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in `0..<bound` (Lemire's multiply-shift with rejection).
    public mutating func next(below bound: UInt64) -> UInt64 {
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let t = (0 &- bound) % bound
            while m.low < t { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
}
