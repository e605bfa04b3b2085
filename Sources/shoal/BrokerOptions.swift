import ArgumentParser
import Foundation
import ShoalAPI
import ShoalCore
#if canImport(Glibc)
import Glibc
import ShoalClient
#endif

/// Options every command that talks to the broker shares.
struct BrokerOptions: ParsableArguments {
    @Option(name: .customLong("broker"), help: ArgumentHelp(
        "The broker's URL (default: $SHOAL_BROKER, else http://127.0.0.1:7070).", valueName: "URL"))
    var broker: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp(
        "The broker's state directory, which holds its token (default: $SHOAL_STATE_DIR, else $XDG_STATE_HOME/shoal, else ~/.local/state/shoal).",
        valueName: "DIR"))
    var stateDirectory: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp(
        "For an https:// broker: the CA (PEM) to trust its certificate with (default: $SHOAL_CA_FILE, else the system's roots).",
        valueName: "FILE"))
    var caFile: String?

    /// Runs `body` with a client for the broker and closes it after. The broker's errors become
    /// the CLI's exit codes: 1 when it answered with an error, 3 when there was no answer; an
    /// unusable `--broker` is a usage error.
    func withClient<T>(
        token: String? = nil,
        timeout: Duration = .seconds(5),
        _ body: (BrokerClient) async throws -> T
    ) async throws -> T {
        let client: BrokerClient
        do {
            client = try BrokerClient(baseURL: BrokerAddress.resolve(broker), token: token, timeout: timeout, caFile: caFile)
        } catch {
            // A usage error, with ArgumentParser's exit status for one.
            printError("shoal: \(error)")
            throw ExitCode.validationFailure
        }
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch let error as BrokerClientError {
            await client.close()
            printError("shoal: \(error)")
            throw Self.exitCode(for: error)
        } catch {
            await client.close()
            throw error
        }
    }

    /// 3 when the broker gave no answer (nothing listening, or too slow), else 1.
    static func exitCode(for error: BrokerClientError) -> ExitCode {
        switch error.kind {
        case .unreachable, .timedOut: ExitCode(3)
        case .status, .badAnswer, .invalidAddress: ExitCode.failure
        }
    }

    /// The token for changes: `$SHOAL_TOKEN`, else the broker's token file in the state directory.
    func token() throws -> String {
        if let token = ProcessInfo.processInfo.environment["SHOAL_TOKEN"], !token.isEmpty { return token }
        let directory = StateDirectory.resolve(stateDirectory)
        do {
            return try BrokerToken.read(stateDirectory: directory)
        } catch {
            printError("shoal: \(error) (or set SHOAL_TOKEN to the broker's token)")
            throw ExitCode.failure
        }
    }
}

/// How commands print: JSON for scripts, tables sized to the terminal for people.
enum Output {
    /// Pretty-printed with sorted keys, so output diffs and greps well.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Whether stdout is a terminal (not a pipe or a file).
    static var isTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// The terminal's width, so tables fit it; nil when stdout is not a terminal (pipes get
    /// whole lines).
    static var terminalWidth: Int? {
        guard isTerminal else { return nil }
        var size = winsize()
        if ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return ProcessInfo.processInfo.environment["COLUMNS"].flatMap(Int.init)
    }

    /// Writes `text` and a newline to stdout unbuffered, so a follower or a watcher in a pipe
    /// is seen at once.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Milliseconds since the Unix epoch, as the broker's views count them.
    static var now: Int64 { Timestamp.now().milliseconds }

    /// Ends the process at the first SIGINT with status 0: for commands that run until
    /// interrupted (`--watch`, `--follow`), stopping is the normal end, and nothing they hold
    /// needs tidying (output is flushed as it is written).
    static func exitOnInterrupt() {
        signal(SIGINT) { _ in _exit(0) }
    }
}
