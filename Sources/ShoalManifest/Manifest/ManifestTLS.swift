import Foundation
import ShoalCore

/// The manifest's `tls: {certificate: FILE, key: FILE}`: both keys or neither, each a path
/// relative to the manifest's own directory, and (when the loader checks them) a pair that
/// loads, each problem at the value it is about.
enum ManifestTLS {
    static let keys = ["certificate", "key"]

    /// The files, or nil when absent or bad (the problems are recorded in `fields`).
    static func read(_ fields: inout YAMLMappingReader, file: String, checkFiles: Bool) -> TLSFiles? {
        fields.nested("tls", knownKeys: keys) { reader -> TLSFiles? in
            let directory = URL(fileURLWithPath: file).deletingLastPathComponent()
            func path(_ key: String) -> String? {
                reader.required(key) { node, name throws(Diagnostic) in
                    let text = try ManifestValues.nonEmpty(node, name)
                    return URL(fileURLWithPath: text, relativeTo: directory).standardizedFileURL.path
                }
            }
            let certificate = path("certificate")
            let key = path("key")
            guard reader.diagnostics.isEmpty, let certificate, let key else { return nil }
            let files = TLSFiles(certificatePath: certificate, keyPath: key)
            guard checkFiles else { return files }
            for problem in TLSFileCheck.problems(files) {
                switch problem {
                case .certificate(let message):
                    reader.report(mark(of: "certificate", in: reader).diagnostic("tls.certificate: \(message)"))
                case .key(let message):
                    reader.report(mark(of: "key", in: reader).diagnostic("tls.key: \(message)"))
                }
            }
            return reader.diagnostics.isEmpty ? files : nil
        } ?? nil
    }

    private static func mark(of key: String, in reader: YAMLMappingReader) -> YAMLMark {
        reader.value(for: key)?.mark ?? reader.node.mark
    }
}
