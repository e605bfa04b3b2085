#if canImport(Glibc)
import Glibc
#endif

// C APIs such as libpvm3 and posix_spawn take `char *` and `char **`, never `const`: hand them private copies.

/// Calls `body` with a NULL-terminated array of C copies of `strings`.
public func withCStringArray<R>(
    _ strings: [String],
    _ body: (UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) throws -> R
) rethrows -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return try pointers.withUnsafeMutableBufferPointer { try body($0.baseAddress!) }
}

/// Calls `body` with a mutable C copy of `string` (or NULL for `nil`).
public func withMutableCString<R>(
    _ string: String?,
    _ body: (UnsafeMutablePointer<CChar>?) throws -> R
) rethrows -> R {
    guard let string else { return try body(nil) }
    let copy = strdup(string)
    defer { free(copy) }
    return try body(copy)
}

/// Whether `string` survives the trip through a C string unchanged (no NUL inside).
public func isCStringSafe(_ string: String) -> Bool {
    !string.utf8.contains(0)
}
