import ArgumentParser
import Checkpoint
import CoDesign
import Foundation
import TextData

/// `restrict-vocab`: a checkpoint whose vocabulary holds only the pieces its task's training texts use.
struct RestrictVocabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restrict-vocab",
        abstract: "Shrink a checkpoint's vocabulary to the word pieces of its task's training split (cheaper secure embedding).",
        discussion: """
            The secure embedding lookup costs 8·S·V bytes online and an [S, V]·[V, H] ring product, linear in the \
            vocabulary size V. This keeps the pieces that tokenizing the training split produces, plus [PAD], \
            [UNK], [CLS], [SEP] and [MASK], in their order, with their embedding rows; every other tensor is \
            unchanged. Texts made of kept pieces give exactly the same predictions; a piece never seen in \
            training is tokenized with the kept pieces instead. Run it on every pool member before export \
            (members of one bundle must share their vocabulary, so restrict them with the same split).
            """)

    @Option(help: "A single-model checkpoint (.h5).") var checkpoint: String
    @Option(help: "Task whose split defines the kept pieces (default: the checkpoint's task).") var task: String?
    @Option(help: "Split whose texts define the kept pieces.") var split = "train"
    @Option(help: "Directory of the fetched datasets.") var dataDir = "datasets"
    @Option(help: "Output checkpoint (.h5).") var out: String
    @OptionGroup var json: JSONOutputOptions

    func run() throws {
        guard FileManager.default.fileExists(atPath: checkpoint) else { throw ValidationError("no such checkpoint: \(checkpoint)") }
        let ckpt = try ModelCheckpoint.read(from: checkpoint)
        let config = try CheckpointConfig.decode(ckpt.configJSON, path: checkpoint)
        let info = try TaskInfo.named(task ?? config.task)
        let url = URL(fileURLWithPath: dataDir).appendingPathComponent(info.name).appendingPathComponent("\(split).tsv")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw ValidationError("\(url.path) not found; run `securerouter data fetch --task \(info.name)` or pass --data-dir")
        }
        let examples = try DatasetReader(task: info).read(url)
        let (restricted, report) = try VocabularyRestriction.restrict(ckpt, texts: examples.flatMap { [$0.text] + ($0.pair.map { [$0] } ?? []) },
                                                                      path: checkpoint)
        try restricted.write(to: out)
        if !json.usesStdout {
            print("wrote \(out): vocabulary \(report.before) → \(report.after) pieces (those of \(report.texts) \(info.name) \(split) texts and the specials); "
                  + String(format: "secure embedding lookup %.1fx cheaper", Double(report.before) / Double(max(report.after, 1))))
        }
        try json.write(["file": out, "vocab_before": report.before, "vocab_after": report.after, "texts": report.texts])
    }
}
