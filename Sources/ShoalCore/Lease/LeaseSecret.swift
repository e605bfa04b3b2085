/// The per-lease secret that lets a worker tell the front-end holding its lease from anyone
/// else who can reach its port. The broker makes one at grant, gives it to the worker (a PVM
/// message) and to the holding front-end (its authenticated answers), and the front-end's relay
/// presents it on every request (HTTP: the ``headerName`` header) or connection (TCP mode: the
/// line ``preamblePrefix`` + secret + CRLF) to that member. The worker's relay checks it in
/// constant time (``matches(_:)``) and strips it before its service instance sees anything.
///
/// 32 random bytes as 43 base64url characters: nothing that needs quoting in a header or a line.
public struct LeaseSecret: Sendable, Hashable, CustomStringConvertible {
    /// The request header the front-end adds; lower case, as the relay writes and matches it.
    public static let headerName = "shoal-lease-secret"
    /// What a TCP-mode connection to a worker starts with: `SHOAL <secret>\r\n`.
    public static let preamblePrefix: [UInt8] = Array("SHOAL ".utf8)
    /// The longest preamble line a worker reads before it gives up on a connection.
    public static let maxPreambleBytes = 128
    static let encodedLength = 43

    /// The secret's text (base64url, no padding).
    public let text: String
    /// ``text``'s bytes.
    public let bytes: [UInt8]

    /// A secret from its text; `nil` unless it is exactly 43 base64url characters (what
    /// ``random()`` makes), so a typo or a truncated value is refused where it is given.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == Self.encodedLength, bytes.allSatisfy(Self.isBase64URL) else { return nil }
        self.text = text
        self.bytes = bytes
    }

    /// A new secret: 32 bytes of `generator` (by default the system's, which is what the broker uses).
    public static func random(using generator: inout some RandomNumberGenerator) -> LeaseSecret {
        let random = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return LeaseSecret(Self.base64URL(random))!
    }

    public static func random() -> LeaseSecret {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    /// Never the secret itself: log lines and error messages print this.
    public var description: String { "(lease secret)" }

    /// Whether `candidate` is this secret, in time that depends only on its length (which is
    /// public), so a caller cannot find the secret byte by byte from how long refusals take.
    @inline(__always)
    public func matches(_ candidate: UnsafeRawBufferPointer) -> Bool {
        guard candidate.count == bytes.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<bytes.count { difference |= bytes[index] ^ candidate[index] }
        return difference == 0
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "_"): true
        default: false
        }
    }

    private static func base64URL(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            var value: UInt32 = 0
            for byte in chunk { value = value << 8 | UInt32(byte) }
            value <<= UInt32(8 * (3 - chunk.count))
            for position in 0...chunk.count { out.append(alphabet[Int(value >> UInt32(18 - 6 * position)) & 63]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
