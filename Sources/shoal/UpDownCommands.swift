import ArgumentParser
import Foundation
import ShoalAPI
import ShoalInstance
import ShoalProcess

#if canImport(Glibc)
import Glibc
#endif

/// `shoal up`: hands over to `shoal-demo up`, built beside `shoal`, which runs the cluster.
struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local cluster (broker, the front-ends of services.d, a pool of three) and keep it running.",
        discussion: """
            Runs in the foreground until `shoal down` (from another terminal) or Ctrl-C, which stop \
            everything it started. The broker uses the default state directory and address, so \
            `shoal leases`, `shoal pool` and the rest need no options.
            """
    )

    @Option(help: "The broker's state directory (default: SHOAL_STATE_DIR, else ~/.local/state/shoal).") var stateDir: String?
    @Option(help: "The broker's API port.") var port = BrokerAPI.defaultPort
    @Option(help: "Directory of the service manifests.") var services = "services.d"
    @Flag(help: "Use slots of this host even where namespaces would work.") var local = false

    func run() throws {
        guard let demo = ExecutableLookup.resolve("shoal-demo") else {
            printError("shoal up: no shoal-demo beside shoal or on PATH: build it with `swift build`")
            throw ExitCode.failure
        }
        let arguments = ["shoal-demo", "up", "--port", "\(port)", "--services", services]
            + (stateDir.map { ["--state-dir", $0] } ?? []) + (local ? ["--local"] : [])
        withCStringArray(arguments) { argv in _ = execv(demo, argv) }
        printError("shoal up: cannot run \(demo): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
    }
}

/// `shoal down`: stops what `shoal up` started, through the `shoal up` process itself.
struct DownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop the cluster `shoal up` is running: front-ends, broker, pool."
    )

    @Option(help: "The state directory `shoal up` used.") var stateDir: String?

    func run() async throws {
        let pidFile = StateDirectory.resolve(stateDir) + "/up.pid"
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0 else {
            printError("shoal down: no cluster is up (no running `shoal up` in \(pidFile))")
            throw ExitCode.failure
        }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(90)
        while kill(pid, 0) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        guard kill(pid, 0) != 0 else {
            printError("shoal down: `shoal up` (pid \(pid)) is still stopping after 90 s")
            throw ExitCode.failure
        }
        print("cluster down")
    }
}
