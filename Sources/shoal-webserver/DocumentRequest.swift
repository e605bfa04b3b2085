/// What one request asks for: the document size and the work done before answering.
struct DocumentRequest: Sendable, Equatable {
    static let maxSize = 1 << 30
    static let maxMilliseconds = 60_000

    var size: Int
    var delayMs: Int
    var cpuMs: Int

    /// `defaults` overridden by the query of `uri` (`size`, `delay_ms`, `cpu_ms`).
    /// Returns a reason on a bad value instead of guessing.
    static func parse(uri: String, defaults: DocumentRequest) -> Result<DocumentRequest, BadQuery> {
        var request = defaults
        guard let question = uri.firstIndex(of: "?") else { return .success(request) }
        for pair in uri[uri.index(after: question)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0]
            let text = parts.count > 1 ? parts[1] : ""
            switch key {
            case "size":
                guard let value = Int(text), (0...maxSize).contains(value) else {
                    return .failure(BadQuery(reason: "size must be an integer 0...\(maxSize)"))
                }
                request.size = value
            case "delay_ms", "cpu_ms":
                guard let value = Int(text), (0...maxMilliseconds).contains(value) else {
                    return .failure(BadQuery(reason: "\(key) must be an integer 0...\(maxMilliseconds)"))
                }
                if key == "delay_ms" { request.delayMs = value } else { request.cpuMs = value }
            default:
                continue  // Unknown parameters are ignored, as any web server would.
            }
        }
        return .success(request)
    }

    struct BadQuery: Error, Equatable {
        var reason: String
    }
}
