/// A dense row-major tensor of Z_2^64 elements.
///
/// Used both for public ring values and for one party's share of a secret (see `ArithmeticShare`).
/// Elementwise operators wrap mod 2^64.
public struct RingTensor: Sendable, Equatable, CustomStringConvertible {
    /// Dimensions, outermost first. `[]` is a scalar.
    public var shape: [Int]
    /// Elements in row-major order; `data.count == shape.product`.
    public var data: [UInt64]

    /// Creates a tensor from its elements. - Precondition: `data.count` equals the product of `shape`.
    public init(shape: [Int], data: [UInt64]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(data.count == RingTensor.count(of: shape), "data count \(data.count) does not match shape \(shape)")
        self.shape = shape
        self.data = data
    }

    /// A tensor filled with one value.
    public init(shape: [Int], repeating value: UInt64 = 0) {
        self.init(shape: shape, data: [UInt64](repeating: value, count: RingTensor.count(of: shape)))
    }

    /// Number of elements of a shape.
    @inlinable public static func count(of shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Number of elements.
    @inlinable public var count: Int { data.count }

    public var description: String { "RingTensor\(shape)" }

    /// Same elements, new shape. - Precondition: element counts agree.
    public func reshaped(_ newShape: [Int]) -> RingTensor { RingTensor(shape: newShape, data: data) }

    // MARK: Elementwise wrapping arithmetic

    @inlinable static func zip(_ a: RingTensor, _ b: RingTensor, _ op: (UInt64, UInt64) -> UInt64) -> RingTensor {
        precondition(a.shape == b.shape, "shape mismatch: \(a.shape) vs \(b.shape)")
        var out = [UInt64](repeating: 0, count: a.count)
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { po in
                    for i in 0..<po.count { po[i] = op(pa[i], pb[i]) }
                }
            }
        }
        return RingTensor(shape: a.shape, data: out)
    }

    @inlinable public static func + (a: RingTensor, b: RingTensor) -> RingTensor { zip(a, b, &+) }
    @inlinable public static func - (a: RingTensor, b: RingTensor) -> RingTensor { zip(a, b, &-) }
    /// Elementwise (Hadamard) product mod 2^64.
    @inlinable public static func * (a: RingTensor, b: RingTensor) -> RingTensor { zip(a, b, &*) }
    @inlinable public static prefix func - (a: RingTensor) -> RingTensor {
        RingTensor(shape: a.shape, data: a.data.map { 0 &- $0 })
    }
    /// Multiplies every element by a public ring constant.
    @inlinable public static func * (a: RingTensor, k: UInt64) -> RingTensor {
        RingTensor(shape: a.shape, data: a.data.map { $0 &* k })
    }

    @inlinable public static func += (a: inout RingTensor, b: RingTensor) {
        precondition(a.shape == b.shape, "shape mismatch: \(a.shape) vs \(b.shape)")
        b.data.withUnsafeBufferPointer { pb in
            a.data.withUnsafeMutableBufferPointer { pa in
                for i in 0..<pa.count { pa[i] = pa[i] &+ pb[i] }
            }
        }
    }

    /// Matrix product mod 2^64 of `[m, k]` by `[k, n]`, giving `[m, n]` (see `RingMatmul`).
    public func matmul(_ b: RingTensor) -> RingTensor {
        precondition(shape.count == 2 && b.shape.count == 2 && shape[1] == b.shape[0],
                     "matmul shapes \(shape) x \(b.shape)")
        let (m, k, n) = (shape[0], shape[1], b.shape[1])
        return RingTensor(shape: [m, n], data: RingMatmul.multiply(data, b.data, m: m, k: k, n: n))
    }
}
