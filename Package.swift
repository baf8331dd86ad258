// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "SecureRouter",
    products: [
        .executable(name: "securerouter", targets: ["securerouter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.0.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, libhdf5-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS"),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5"),
        // The AVX-512 ring matmul kernel (C, chosen at run time on CPUs that have it).
        .target(name: "CRingKernel", path: "Sources/CRingKernel"),
        // The AES-NI DCF kernels (C, chosen at run time on CPUs that have AES-NI).
        .target(name: "CFSSKernel", path: "Sources/CFSSKernel"),

        .target(
            name: "Tensor", dependencies: ["CBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "TextData", dependencies: [
            "Tensor",
            .product(name: "Crypto", package: "swift-crypto"),
            "ZIPFoundation",
        ]),
        .target(name: "Transformer", dependencies: ["Tensor"]),
        .target(
            name: "MPC",
            dependencies: [
                "CRingKernel",
                "CFSSKernel",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]),
        .target(name: "Checkpoint", dependencies: ["CHDF5", "Tensor", "Transformer"]),
        .target(name: "CostModel", dependencies: ["MPC"]),
        .target(name: "SecureInference", dependencies: ["CostModel", "MPC", "Checkpoint", "Transformer", "Tensor", "TextData", "CBLAS"]),
        .target(name: "CoDesign", dependencies: ["Tensor", "Transformer", "TextData", "Checkpoint", "CostModel", "MPC", "SecureInference", "Yams"]),
        .target(name: "Router", dependencies: ["CoDesign", "Tensor", "Transformer", "TextData", "Checkpoint", "CostModel", "MPC", "SecureInference",
                                               .product(name: "Crypto", package: "swift-crypto")]),
        .target(name: "Deployment", dependencies: ["MPC", "SecureInference", "Router", "TextData"]),
        .executableTarget(name: "securerouter", dependencies: [
            "Tensor", "TextData", "Transformer", "Checkpoint", "CoDesign", "MPC", "SecureInference", "CostModel", "Router", "Deployment", "Yams",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Helpers shared by test targets (numeric comparisons with readable failures).
        .target(name: "_TestSupport", dependencies: ["Tensor"], path: "Sources/_TestSupport"),
        .testTarget(name: "TensorTests", dependencies: ["Tensor", "_TestSupport"]),
        .testTarget(name: "TextDataTests", dependencies: ["TextData"], exclude: ["fixtures"]),
        .testTarget(name: "TransformerTests", dependencies: ["Transformer", "Tensor", "_TestSupport"]),
        .testTarget(name: "CheckpointTests", dependencies: ["Checkpoint", "Transformer", "Tensor"]),
        .testTarget(name: "RouterTests", dependencies: ["Router", "Tensor", "Transformer", "MPC", "SecureInference", "Checkpoint"]),
        .testTarget(name: "CoDesignTests", dependencies: ["CoDesign", "Transformer", "Tensor", "CostModel", "MPC"]),
        .testTarget(name: "IntegrationTests", dependencies: ["Checkpoint", "Transformer", "Tensor", "TextData"]),
        .testTarget(name: "MPCTests", dependencies: ["MPC", "CFSSKernel"]),
        .testTarget(name: "SecureInferenceTests", dependencies: ["SecureInference", "MPC", "Transformer", "Tensor", "Checkpoint", "CostModel", "TextData"]),
        .testTarget(name: "CLITests", dependencies: ["securerouter", "Checkpoint", "MPC"]),
    ]
)
