import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import ShoalAPI

/// JSON answers, built by hand so every route (and every error) sets its own status.
enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var headers = headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

/// Request bodies, decoded strictly: a typo in a field name is a 400, not a silently ignored
/// field (JSONDecoder ignores unknown keys by default).
enum StrictJSON {
    /// Decodes the whole body as `T`. An empty body is `ifEmpty` if given, else a 400. Bodies
    /// over ``BrokerAPI/maxBodyBytes`` get 413.
    static func decode<T: Codable>(_ type: T.Type, from request: Request, ifEmpty: T? = nil) async throws -> T {
        let buffer = try await request.body.collect(upTo: BrokerAPI.maxBodyBytes)
        let data = Data(buffer.readableBytesView)
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            guard let ifEmpty else { throw HTTPError(.badRequest, message: "the request needs a JSON body") }
            return ifEmpty
        }
        do {
            return try decode(type, from: data)
        } catch let error as DecodingError {
            throw HTTPError(.badRequest, message: reason(for: error))
        }
    }

    /// The unknown-field check is generic: a field `T` decoded comes back when `T` is encoded
    /// again (true of synthesized Codable), so any other non-null field is one `T` does not know.
    /// Only the top level is checked: no request body nests objects.
    static func decode<T: Codable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        let given = try decoder.decode([String: JSONField].self, from: data)
        let value = try decoder.decode(type, from: data)
        let known = try decoder.decode([String: JSONField].self, from: JSONEncoder().encode(value))
        let unknown = given.filter { !$0.value.isNull && known[$0.key] == nil }.keys.sorted()
        if !unknown.isEmpty {
            let names = unknown.map { "`\($0)`" }.joined(separator: ", ")
            throw HTTPError(.badRequest, message: "unknown field\(unknown.count == 1 ? "" : "s") \(names) in the body")
        }
        return value
    }

    /// A sentence that names the field and what is wrong with it.
    static func reason(for error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field `\(path(context.codingPath + [key]))`"
        case .valueNotFound(_, let context):
            return "field `\(path(context.codingPath))` must not be null"
        case .typeMismatch(_, let context) where context.codingPath.isEmpty:
            return "the body must be a JSON object"
        case .typeMismatch(let type, let context):
            return "field `\(path(context.codingPath))` must be \(describe(type))"
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            let detail = context.underlyingError.map { ": \($0.localizedDescription)" } ?? ""
            return "the body is not valid JSON\(detail)"
        case .dataCorrupted(let context):
            return "field `\(path(context.codingPath))` is invalid: \(context.debugDescription)"
        @unknown default:
            return "the body does not decode: \(error)"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        keys.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Int64.Type: "a whole number"
        case is Double.Type: "a number"
        default: "of type \(type)"
        }
    }
}

/// Any JSON value, kept only as "null or not": enough to list a body's fields.
struct JSONField: Decodable {
    let isNull: Bool

    init(from decoder: any Decoder) throws {
        isNull = try decoder.singleValueContainer().decodeNil()
    }
}
