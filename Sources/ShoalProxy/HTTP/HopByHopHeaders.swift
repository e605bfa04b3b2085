/// Hop-by-hop header handling (RFC 9110 §7.6.1): these headers describe one connection, so a
/// relay drops them on both hops and sets its own.
enum HopByHopHeaders {
    /// Whether `name` is hop-by-hop: `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`,
    /// `Transfer-Encoding`, `Upgrade`. By length first, so most names are ruled out in a compare or two.
    static func isHopByHop(_ name: UnsafeRawBufferPointer) -> Bool {
        let equals: (UnsafeRawBufferPointer, StaticString) -> Bool = equalsLowercase
        switch name.count {
        case 2: return equals(name, "te")
        case 7: return equals(name, "trailer") || equals(name, "upgrade") || isProxy(name)
        case 10: return equals(name, "connection") || equals(name, "keep-alive") || isProxy(name)
        case 17: return equals(name, "transfer-encoding") || isProxy(name)
        case 8...: return isProxy(name)
        default: return false
        }
    }

    /// `Proxy-Connection`, `Proxy-Authorization`, `Proxy-Authenticate` and their kin.
    private static func isProxy(_ name: UnsafeRawBufferPointer) -> Bool {
        name.count > 6 && equalsLowercase(UnsafeRawBufferPointer(rebasing: name[0..<6]), "proxy-")
    }

    /// Case-insensitive equality with a lower-case ASCII literal of letters, digits and `-`.
    /// (`| 0x20` folds upper to lower case; it could also match CR to `-` and control bytes to digits,
    /// which no name or value that passed ``HTTPSyntax/fieldLine(_:at:)`` holds.)
    @inline(__always)
    static func equalsLowercase(_ name: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        guard name.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            for index in 0..<name.count where name[index] | 0x20 != expected[index] { return false }
            return true
        }
    }

    /// Whether a header name (bytes) is `name`, ignoring ASCII case, without making a string.
    static func sameName(_ bytes: UnsafeRawBufferPointer, _ name: String) -> Bool {
        guard bytes.count == name.utf8.count else { return false }
        for (byte, other) in zip(bytes, name.utf8) where lowered(byte) != lowered(other) { return false }
        return true
    }

    @inline(__always)
    private static func lowered(_ byte: UInt8) -> UInt8 {
        (65...90).contains(byte) ? byte + 32 : byte
    }
}
