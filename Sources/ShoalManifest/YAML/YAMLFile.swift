import Foundation
import ShoalCore

/// Reading YAML files from disk, within ``YAMLLimits/maxFileSize``.
extension YAMLParser {
    /// Reads and parses the file at `path`; `path` as given names it in diagnostics.
    /// Returns nil for a file with no document (empty, or only comments).
    public func parseFile(atPath path: String) throws(Diagnostic) -> YAMLNode? {
        try parse(bytes: readFile(atPath: path), file: path)
    }

    /// The bytes of a regular file, refusing anything larger than the limit without reading it all.
    public func readFile(atPath path: String) throws(Diagnostic) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw Diagnostic(file: path, message: "no such file or directory")
        }
        guard !isDirectory.boolValue else {
            throw Diagnostic(file: path, message: "is a directory, expected a YAML file")
        }
        do {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            let data = try handle.read(upToCount: limits.maxFileSize + 1) ?? Data()
            guard data.count <= limits.maxFileSize else {
                throw Diagnostic(file: path, message: "file is too large (more than \(limits.maxFileSize) bytes)")
            }
            return [UInt8](data)
        } catch let diagnostic as Diagnostic {
            throw diagnostic
        } catch {
            throw Diagnostic(file: path, message: "cannot read: \(Self.reason(error))")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain,
           let message = strerror(Int32(underlying.code)) {
            return String(cString: message).lowercased()
        }
        return nsError.localizedDescription
    }
}
