import ShoalClient
import ArgumentParser
import ShoalAPI
import ShoalRendering

/// `shoal leases`: the lease table, once or redrawn until interrupted.
struct LeasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leases",
        abstract: "List the broker's leases: which back-end each front-end holds, and in what state.",
        // The generated usage would end in a <subcommand> that is optional.
        usage: """
            shoal leases [--all] [--json] [--watch [--interval <SECONDS>]] [--broker <URL>] [--state-dir <DIR>]
            shoal leases explain <LEASE> [--json] [--broker <URL>]
            """,
        discussion: """
            Shows live leases (requested, granted, active, draining); --all adds released and \
            revoked ones. A draining lease shows why and how long its drain may still take, e.g. \
            'draining (preemption, 3s left)'; IN-FLIGHT is the worker's last load report. \
            Use 'shoal leases explain LEASE' for the history of one lease.

            Exit status: 0 ok, 1 the broker answered with an error, 3 the broker could not be reached.
            """,
        subcommands: [LeaseExplainCommand.self]
    )

    @Flag(help: "Include released and revoked leases.") var all = false
    @Flag(help: "Print JSON (pretty-printed, sorted keys) instead of a table.") var json = false
    @Flag(help: "Redraw the table every --interval seconds until interrupted (Ctrl-C).") var watch = false
    @Option(help: ArgumentHelp("Seconds between redraws with --watch.", valueName: "SECONDS"))
    var interval: Double = 2
    @OptionGroup var broker: BrokerOptions

    func validate() throws {
        guard interval > 0, interval.isFinite else { throw ValidationError("--interval must be a number of seconds above 0") }
        guard !(json && watch) else { throw ValidationError("--json and --watch cannot be combined: poll with --json instead") }
    }

    func run() async throws {
        try await broker.withClient { client in
            guard watch else {
                let leases = try await client.leases(includingFinal: all)
                Output.write(json ? try Output.json(leases) : render(leases: leases, now: Output.now, width: Output.terminalWidth))
                return
            }
            Output.exitOnInterrupt()
            while true {
                let leases = try await client.leases(includingFinal: all)
                let table = render(leases: leases, now: Output.now, width: Output.terminalWidth)
                let heading = "Every \(Self.seconds(interval)): shoal leases\(all ? " --all" : "")    \(TimeText.timestamp(milliseconds: Output.now))"
                if Output.isTerminal {
                    // Home the cursor and clear the screen, like watch(1).
                    Output.write("\u{1B}[H\u{1B}[2J" + heading + "\n\n" + table)
                } else {
                    Output.write("--- " + heading + "\n" + table + "\n")
                }
                try await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
            }
        }
    }

    /// `2s`, `0.5s`.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }
}

/// `shoal leases explain LEASE`: one lease and every event of its life.
struct LeaseExplainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show one lease and its history: every event, with the figures behind each decision.",
        discussion: "Exit status: 0 ok, 1 the broker answered with an error (e.g. no such lease), 3 the broker could not be reached."
    )

    @Argument(help: ArgumentHelp("The lease's id, as 'shoal leases' shows it (e.g. L-000001).", valueName: "LEASE"))
    var lease: String
    @Flag(help: "Print JSON (pretty-printed, sorted keys) instead of text.") var json = false
    @OptionGroup var broker: BrokerOptions

    func run() async throws {
        try await broker.withClient { client in
            let explanation = try await client.explain(lease: lease)
            Output.write(json ? try Output.json(explanation) : render(explanation: explanation, now: Output.now))
        }
    }
}
