import Foundation

/// A problem with a user's YAML configuration: a bad key, a bad value, an unreadable file.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    /// The config file, when known.
    public var path: String?
    /// What is wrong and how to fix it, in one sentence.
    public var message: String

    public init(path: String? = nil, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        return message
    }
}
