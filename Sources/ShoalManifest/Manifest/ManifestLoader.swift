import Foundation
import ShoalCore

/// Loads a set of service manifests — from directories (`*.yaml`, `*.yml`, sorted by name) and
/// files — and checks them together: service names and public ports must be unique.
///
/// The result is either every manifest or every problem found, in file order and then by position.
public struct ManifestLoader: Sendable {
    public var parser: YAMLParser
    /// Whether `tls` files must exist and load (see ``ManifestDecoder/decode(_:file:checkTLSFiles:)``).
    public var checkTLSFiles: Bool

    public init(limits: YAMLLimits = YAMLLimits(), checkTLSFiles: Bool = true) {
        self.parser = YAMLParser(limits: limits)
        self.checkTLSFiles = checkTLSFiles
    }

    /// Loads every manifest named by `paths`; each is a directory or a file.
    public func load(paths: [String]) -> Result<[LoadedManifest], DiagnosticList> {
        let (files, problems) = ManifestFiles.list(paths)
        let drafts = files.map { file in
            do throws(Diagnostic) {
                return ManifestDecoder.draft(try parser.parseFile(atPath: file), file: file, checkTLSFiles: checkTLSFiles)
            } catch {
                return ManifestDraft(diagnostics: [error])
            }
        }
        return Self.combine(drafts, problems: problems)
    }

    /// Loads manifests given as text (for tests and tools); `file` names each in diagnostics.
    public func load(sources: [(file: String, text: String)]) -> Result<[LoadedManifest], DiagnosticList> {
        let drafts = sources.map { source in
            do throws(Diagnostic) {
                return ManifestDecoder.draft(try parser.parse(source.text, file: source.file), file: source.file, checkTLSFiles: checkTLSFiles)
            } catch {
                return ManifestDraft(diagnostics: [error])
            }
        }
        return Self.combine(drafts, problems: [])
    }

    /// Loads one manifest given as text, with no cross-manifest checks.
    public func load(text: String, file: String) -> Result<LoadedManifest, DiagnosticList> {
        do throws(Diagnostic) {
            return ManifestDecoder.decode(try parser.parse(text, file: file), file: file, checkTLSFiles: checkTLSFiles)
        } catch {
            return .failure(DiagnosticList([error]))
        }
    }

    /// Adds the cross-manifest problems to each draft's own, reported at the later occurrence.
    private static func combine(_ drafts: [ManifestDraft], problems: [Diagnostic]) -> Result<[LoadedManifest], DiagnosticList> {
        var all = problems
        var names: [String: YAMLMark] = [:]
        var ports: [Int: (service: String?, mark: YAMLMark)] = [:]
        for draft in drafts {
            var own = draft.diagnostics
            if let name = draft.name {
                if let first = names[name.value] {
                    own.append(name.mark.diagnostic("service name '\(name.value)' is already used (\(first))"))
                } else {
                    names[name.value] = name.mark
                }
            }
            if let port = draft.port {
                if let first = ports[port.value] {
                    let owner = first.service.map { " by service '\($0)'" } ?? ""
                    own.append(port.mark.diagnostic("port \(port.value) is already used\(owner) (\(first.mark))"))
                } else {
                    ports[port.value] = (draft.name?.value, port.mark)
                }
            }
            all += own.sortedByPosition()
        }
        guard all.isEmpty else { return .failure(DiagnosticList(all)) }
        return .success(drafts.compactMap(\.manifest))
    }
}
