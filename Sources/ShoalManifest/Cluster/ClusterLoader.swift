import ShoalCore

/// Loads the cluster file that lists the broker's pool hosts:
///
/// ```yaml
/// hosts:
///   - name: c1
///     slots: 2
///   - name: c2
/// ```
///
/// The result is either every host, in file order, or every problem found, by position.
public struct ClusterLoader: Sendable {
    public var parser: YAMLParser

    public init(limits: YAMLLimits = YAMLLimits()) {
        self.parser = YAMLParser(limits: limits)
    }

    /// Loads the cluster file at `path`; `path` as given names it in diagnostics.
    public func load(path: String) -> Result<[PoolHost], DiagnosticList> {
        do throws(Diagnostic) {
            return ClusterDecoder.decode(try parser.parseFile(atPath: path), file: path)
        } catch {
            return .failure(DiagnosticList([error]))
        }
    }

    /// Loads a cluster file given as text (for tests and tools); `file` names it in diagnostics.
    public func load(text: String, file: String) -> Result<[PoolHost], DiagnosticList> {
        do throws(Diagnostic) {
            return ClusterDecoder.decode(try parser.parse(text, file: file), file: file)
        } catch {
            return .failure(DiagnosticList([error]))
        }
    }
}
