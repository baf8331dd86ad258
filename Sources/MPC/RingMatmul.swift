/// Placeholder; replaced below.
public enum RingMatmul {
    public static func multiply(_ a: [UInt64], _ b: [UInt64], m: Int, k: Int, n: Int) -> [UInt64] {
        var c = [UInt64](repeating: 0, count: m * n)
        for i in 0..<m { for p in 0..<k { let x = a[i * k + p]; for j in 0..<n { c[i * n + j] &+= x &* b[p * n + j] } } }
        return c
    }
}
