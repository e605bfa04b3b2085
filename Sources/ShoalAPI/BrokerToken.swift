#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The shared secret that every change to the broker presents as `Authorization: Bearer`.
///
/// It lives in the state directory, readable by its owner only: whoever can read it can lease
/// back-ends, so a file others can read is refused rather than used.
public enum BrokerToken {
    /// The broker's side: the token in `stateDirectory`, made (with the directory) if there is none.
    public static func loadOrCreate(stateDirectory: String) throws -> String {
        try createDirectory(stateDirectory)
        let path = tokenPath(in: stateDirectory)
        // O_EXCL: if two brokers start at once, one creates and the other reads.
        let descriptor = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let error = errno
            guard error == EEXIST else { throw BrokerTokenError("cannot create the broker token \(path) (\(describe(error)))") }
            return try readToken(at: path)
        }
        defer { close(descriptor) }

        let token = hex(randomBytes(32))
        guard writeAll(descriptor, token + "\n"), fsync(descriptor) == 0 else {
            let error = errno
            unlink(path)
            throw BrokerTokenError("cannot write the broker token \(path) (\(describe(error)))")
        }
        return token
    }

    /// The client's side: the token the broker wrote in `stateDirectory`.
    public static func read(stateDirectory: String) throws -> String {
        try readToken(at: tokenPath(in: stateDirectory))
    }

    /// Whether `presented` is `expected`, taking the same time wherever they differ: the time
    /// depends on the expected token's length only, so it tells an attacker nothing.
    public static func matches(_ presented: some StringProtocol, _ expected: String) -> Bool {
        let presented = Array(presented.utf8)
        let expected = Array(expected.utf8)
        var difference = UInt(bitPattern: presented.count ^ expected.count)
        for index in expected.indices {
            let byte = index < presented.count ? presented[index] : 0
            difference |= UInt(byte ^ expected[index])
        }
        return difference == 0 && !expected.isEmpty
    }

    // MARK: Files

    static func tokenPath(in stateDirectory: String) -> String {
        stateDirectory + "/" + BrokerAPI.tokenFileName
    }

    private static func readToken(at path: String) throws -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let error = errno
            if error == ENOENT {
                throw BrokerTokenError(
                    "no broker token at \(path): start `shoal broker` (it writes one there), or point --state-dir or SHOAL_STATE_DIR at the broker's state directory")
            }
            throw BrokerTokenError("cannot read the broker token \(path) (\(describe(error))): run as the broker's user")
        }
        defer { close(descriptor) }

        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw BrokerTokenError("cannot stat the broker token \(path) (\(describe(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw BrokerTokenError("the broker token \(path) is not a regular file") }
        let permissions = info.st_mode & 0o777
        guard permissions & 0o077 == 0 else {
            let mode = String(permissions, radix: 8)
            throw BrokerTokenError(
                "the broker token \(path) is open to group or others (mode \(String(repeating: "0", count: 4 - mode.count) + mode)): run `chmod 600 \(path)`")
        }

        var bytes = [UInt8](repeating: 0, count: 4096)
        let count = readBytes(descriptor, &bytes, bytes.count)
        guard count >= 0 else { throw BrokerTokenError("cannot read the broker token \(path) (\(describe(errno)))") }
        let token = String(decoding: bytes[..<count], as: UTF8.self).trimmingWhitespace
        guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
            throw BrokerTokenError("the broker token \(path) is empty or malformed: delete it and restart `shoal broker` to make a new one")
        }
        return token
    }

    /// `mkdir -p`, each new directory 0700 as the XDG spec asks for state.
    private static func createDirectory(_ path: String) throws {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        let error = errno
        let parent = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        guard error == ENOENT, !parent.isEmpty, parent != path else {
            throw BrokerTokenError("cannot create the state directory \(path) (\(describe(error)))")
        }
        try createDirectory(parent)
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
            throw BrokerTokenError("cannot create the state directory \(path) (\(describe(errno)))")
        }
    }

    private static func writeAll(_ descriptor: CInt, _ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return false }
            bytes = bytes.dropFirst(written)
        }
        return true
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()  // getrandom(2): fit for secrets.
        return (0..<count).map { _ in generator.next() }
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func describe(_ error: CInt) -> String {
        String(cString: strerror(error)).lowercased()
    }
}

/// Why the token could not be made or read, and what to do.
public struct BrokerTokenError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// `read(2)`, which ``BrokerToken/read(stateDirectory:)`` hides inside the enum.
private func readBytes(_ descriptor: CInt, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

extension String {
    fileprivate var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
