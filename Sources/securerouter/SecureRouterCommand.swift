import ArgumentParser

@main
struct SecureRouterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "securerouter",
        abstract: "Train BERT-style classifier pools, export HDF5 checkpoints, and evaluate them under MPC.",
        discussion: """
            Typical flow: `data fetch` -> `train-pool --config configs/X.yaml` -> `predict` / `inspect`.
            Every command has --help; report commands take --json PATH (`-` for stdout).
            """,
        subcommands: [
            DataCommand.self, ImportHFCommand.self, TokenizeCommand.self, PredictCommand.self,
            TrainPoolCommand.self, FitRouterCommand.self, InspectCommand.self, ExportCommand.self, RestrictVocabCommand.self, SecureEvalCommand.self, PartyCommand.self, KeygenCommand.self, CoTrainCommand.self, CostCommand.self, BenchCommand.self, WorkerCommand.self,
        ])
}
