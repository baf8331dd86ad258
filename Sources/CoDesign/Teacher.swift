import Checkpoint
import Foundation
import Transformer

/// A frozen teacher model for logit distillation.
struct Teacher {
    var model: BertForSequenceClassification
    var config: DistillationConfig

    /// Loads the teacher and checks it can teach this student (same vocabulary and label set).
    /// - Throws: `ConfigError` naming the teacher file and the mismatch.
    static func load(_ config: DistillationConfig, student: CheckpointConfig, vocab: [String]) throws -> Teacher {
        let ckpt = try ModelCheckpoint.read(from: config.teacher)
        let teacherConfig = try CheckpointConfig.decode(ckpt.configJSON, path: config.teacher)
        guard ckpt.vocab == vocab else {
            throw ConfigError("teacher \(config.teacher) uses a different vocabulary (\(ckpt.vocab.count) tokens) than the student (\(vocab.count)); distillation needs the same tokenizer")
        }
        guard teacherConfig.labels == student.labels else {
            throw ConfigError("teacher \(config.teacher) predicts labels \(teacherConfig.labels) but the student's task has \(student.labels)")
        }
        let model = try BertForSequenceClassification.load(checkpoint: ckpt, path: config.teacher)
        return Teacher(model: model, config: config)
    }
}
