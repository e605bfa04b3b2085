import Foundation

/// The reason recorded with an event: a sentence, and optionally the figures behind it (levels,
/// fair-share arithmetic …) as a JSON object.
public struct EventReason: Sendable, Hashable, ExpressibleByStringLiteral {
    public var text: String
    /// JSON text, or nil.
    public var details: String?

    public init(_ text: String) {
        self.text = text
        self.details = nil
    }

    public init(stringLiteral text: String) {
        self.init(text)
    }

    /// A reason with `details` encoded as JSON (keys sorted, so the same figures read the same).
    public init(_ text: String, details: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(details)
            self.text = text
            self.details = String(decoding: data, as: UTF8.self)
        } catch {
            throw LeaseStoreError(code: .badDetails, message: "cannot encode the details of \"\(text)\": \(error)")
        }
    }
}
