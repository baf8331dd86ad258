// Module Tensor: Float32 tensors, BLAS-backed kernels, reverse-mode autograd,
// AdamW and learning-rate schedules.
//
// Shape legend used in every `///` comment of this module:
//   B batch, S sequence, H hidden, A heads, D head dim (H = A*D),
//   I intermediate, V vocabulary, C classes, N rows (any flattened leading dims).

/// A row-major, contiguous Float32 tensor that records the operations applied
/// to it so that `backward()` can compute gradients (reverse-mode autograd).
///
/// Gradients accumulate (`+=`): a tensor used twice receives the sum of both
/// contributions. Call `zeroGrad()` (or the optimizer's) between steps.
public final class Tensor {
    /// Dimensions, outermost first.
    public let shape: [Int]
    /// Elements in row-major order; `data.count == shape.reduce(1, *)`.
    public var data: [Float]
    /// Gradient of the last `backward()` root with respect to this tensor, same
    /// layout as `data`; nil until a backward pass reaches this tensor.
    public var grad: [Float]?
    /// Whether gradients are tracked for this tensor (leaf parameters set it;
    /// results of ops inherit it from their inputs unless in no-grad mode).
    public var requiresGrad: Bool

    /// Inputs of the op that produced this tensor (empty for leaves).
    var parents: [Tensor] = []
    /// Backward rule of the op that produced this tensor: reads `self.grad`
    /// (passed in as the argument) and accumulates into the parents' grads.
    var backwardRule: ((Tensor) -> Void)?

    /// Creates a tensor from row-major data.
    /// - Precondition: `data.count` equals the product of `shape`.
    public init(shape: [Int], data: [Float], requiresGrad: Bool = false) {
        check(
            shape.reduce(1, *) == data.count,
            "Tensor: shape \(shape) needs \(shape.reduce(1, *)) elements, got \(data.count)")
        self.shape = shape
        self.data = data
        self.requiresGrad = requiresGrad
    }

    /// Number of elements.
    @inlinable public var count: Int { data.count }

    /// Number of dimensions.
    public var rank: Int { shape.count }

    /// The single value of a one-element tensor.
    public var item: Float {
        check(data.count == 1, "item: tensor of shape \(shape) is not a scalar")
        return data[0]
    }

    /// A tensor of zeros.
    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// A tensor of ones.
    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: 1, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// A tensor filled with `value`.
    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, data: [Float](repeating: value, count: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    /// Whether `randn` and `uniform` draw their values (task-local). A model built only to receive every
    /// tensor from a checkpoint turns it off: its layers then start at zero instead of spending seconds on
    /// samples that the load overwrites (L6 has 22.7 M parameters).
    @TaskLocal public static var drawsInitialValues: Bool = true

    /// A tensor of independent normal samples with mean `mean` and standard deviation `std` (zeros when
    /// `drawsInitialValues` is off).
    public static func randn(
        _ shape: [Int], mean: Float = 0, std: Float = 1, rng: SeededGenerator, requiresGrad: Bool = false
    ) -> Tensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        guard drawsInitialValues else { return Tensor(shape: shape, data: data, requiresGrad: requiresGrad) }
        for i in 0..<n { data[i] = mean + std * rng.nextGaussian() }
        return Tensor(shape: shape, data: data, requiresGrad: requiresGrad)
    }

    /// A tensor of independent uniform samples in `[low, high)` (zeros when `drawsInitialValues` is off).
    public static func uniform(
        _ shape: [Int], low: Float = 0, high: Float = 1, rng: SeededGenerator, requiresGrad: Bool = false
    ) -> Tensor {
        let n = shape.reduce(1, *)
        var data = [Float](repeating: 0, count: n)
        guard drawsInitialValues else { return Tensor(shape: shape, data: data, requiresGrad: requiresGrad) }
        for i in 0..<n { data[i] = low + (high - low) * rng.nextFloat() }
        return Tensor(shape: shape, data: data, requiresGrad: requiresGrad)
    }

    /// Clears the gradient (sets it to nil; the next backward pass starts from zero).
    public func zeroGrad() { grad = nil }

    /// A copy of this tensor's values that is not connected to the graph.
    public func detached() -> Tensor { Tensor(shape: shape, data: data) }

    // MARK: Grad mode

    /// Whether ops record the graph. Task-local, so concurrent tasks do not interfere.
    @TaskLocal public static var isGradEnabled: Bool = true

    /// Runs `body` without recording any graph (inference): results of ops
    /// have `requiresGrad == false` and hold no references to their inputs.
    public static func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
        try $isGradEnabled.withValue(false) { try body() }
    }

    /// Builds the result of an op: attaches `rule` and `parents` when any
    /// parent requires a gradient and grad mode is on.
    @inline(__always)
    static func result(
        shape: [Int], data: [Float], parents: [Tensor], rule: @escaping (Tensor) -> Void
    ) -> Tensor {
        let out = Tensor(shape: shape, data: data)
        if isGradEnabled && parents.contains(where: { $0.requiresGrad }) {
            out.requiresGrad = true
            out.parents = parents
            out.backwardRule = rule
        }
        return out
    }

    /// Accumulates into this tensor's gradient (allocating zeros first if
    /// needed); does nothing when the tensor does not require a gradient.
    @inline(__always)
    func accumulateGrad(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
        guard requiresGrad else { return }
        if grad == nil { grad = [Float](repeating: 0, count: data.count) }
        grad!.withUnsafeMutableBufferPointer { body($0) }
    }

    // MARK: Backward

    /// Backpropagates from this scalar (seed 1): accumulates `d self / d t`
    /// into `t.grad` for every tensor `t` with `requiresGrad` reachable from it.
    /// The graph is released afterwards (like PyTorch without `retain_graph`).
    public func backward() {
        check(data.count == 1, "backward(): call on a scalar, or pass a gradient (shape \(shape))")
        backward(gradient: [1])
    }

    /// Backpropagates from this tensor with the given output gradient (same layout as `data`).
    public func backward(gradient: [Float]) {
        check(gradient.count == data.count, "backward: gradient has \(gradient.count) elements, need \(data.count)")
        guard requiresGrad else { return }
        let order = topologicalOrder()
        if grad == nil {
            grad = gradient
        } else {
            accumulateGrad { g in for i in 0..<g.count { g[i] += gradient[i] } }
        }
        for node in order.reversed() {
            guard let rule = node.backwardRule else { continue }
            if node.grad != nil { rule(node) }
            // Release the graph and the intermediate gradient.
            node.backwardRule = nil
            node.parents = []
            node.grad = nil
        }
    }

    /// Nodes reachable from `self` with parents before children (iterative DFS).
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (node, expanded) = stack.popLast() {
            if expanded { order.append(node); continue }
            if !visited.insert(ObjectIdentifier(node)).inserted { continue }
            stack.append((node, true))
            for p in node.parents where p.requiresGrad && !visited.contains(ObjectIdentifier(p)) {
                stack.append((p, false))
            }
        }
        return order
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = data.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), data: [\(head)\(data.count > 8 ? ", ..." : "")])"
    }
}
