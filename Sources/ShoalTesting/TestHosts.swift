import Foundation
import Synchronization

/// Several real PVM hosts on this machine, one network namespace each, made by
/// `scripts/testhosts` (which documents the set-up). Host 0 runs the master pvmd; attach to it
/// with `PVMEngine.attach(socketPath: hosts.masterSocket, …)` — a Unix-domain socket, which
/// crosses network namespaces, so the test process itself stays in the root namespace.
///
/// Needs root, `ip` (iproute2), `unshare` and pvmd; `up` fails with the script's message when the
/// machine cannot do it. Prefer ``withTestHosts(count:_:)``, which always tears down.
public struct TestHosts: Sendable {
    /// The run's unique name prefix (`sh<pid>-<n>`); every namespace, link and directory of
    /// the run starts with it.
    public let prefix: String
    /// Where the run keeps its per-host `PVM_TMP` directories, logs and the `rsh` wrapper.
    public let runDirectory: String
    /// Host names (what PVM, hostname and `/etc/hosts` use), the master first.
    public let names: [String]
    /// Each host's network namespace, in the order of `names` (the same names unless `up` was
    /// given names of its own).
    public let namespaces: [String]
    /// Each host's address, in the order of `names`.
    public let addresses: [String]
    /// The bridge's address in the root namespace, when made `reachable`.
    public let rootAddress: String?
    /// The remote-shell wrapper pvmd uses (`PVM_RSH`); `rsh HOST CMD...` runs CMD in HOST.
    public let rshWrapper: String
    /// The master pvmd's PID.
    public let masterPID: Int32
    /// The master pvmd's Unix-domain socket.
    public let masterSocket: String
    /// The master pvmd's `PVM_TMP`.
    public let masterTemporaryDirectory: String
    /// The virtual machine's `PVM_VMID`.
    public let virtualMachineID: String
    /// The script that made the hosts.
    public let script: String

    /// The master host's name.
    public var master: String { names[0] }
    /// Every host but the master: the ones to `addHosts`.
    public var others: [String] { Array(names.dropFirst()) }

    /// Makes `count` hosts and starts the master pvmd.
    /// - Parameter script: `scripts/testhosts`; by default found from this source file, or
    ///   `$SHOAL_TESTHOSTS_SCRIPT`.
    /// - Parameter reachable: give the bridge an address in the root namespace, so this process
    ///   (and front-ends it starts) reach the hosts' addresses.
    ///   `names` (one per host, the master first) replaces the generated host names.
    public static func up(
        count: Int, reachable: Bool = false, names: [String]? = nil, prefix: String? = nil,
        script: String? = nil, timeout: Duration = .seconds(60)
    ) async throws -> TestHosts {
        let script = script ?? defaultScript()
        let prefix = prefix ?? "sh\(getpid())-\(TestHostsCounter.next())"
        let options = (reachable ? ["-r"] : []) + (names.map { ["-n", $0.joined(separator: " ")] } ?? [])
        let output = try await TestHostsScript.run(script, ["up", "-p", prefix] + options + ["\(count)"],
                                                   environment: ["SHOAL_TESTHOSTS_OWNER": "\(getpid())"],
                                                   timeout: timeout)
        guard output.status == 0 else {
            throw TestHostsError(command: "testhosts up \(count)", status: output.status, output: output.stderr + output.stdout)
        }
        var values: [String: String] = [:]
        for line in output.stdout.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            values[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        func value(_ key: String) throws -> String {
            guard let value = values[key], !value.isEmpty else {
                throw TestHostsError(command: "testhosts up \(count)", status: output.status,
                                     output: "no \(key) in its output:\n\(output.stdout)")
            }
            return value
        }
        return TestHosts(
            prefix: try value("PREFIX"),
            runDirectory: try value("RUNDIR"),
            names: try value("HOSTS").split(separator: " ").map(String.init),
            namespaces: try value("NAMESPACES").split(separator: " ").map(String.init),
            addresses: try value("ADDRESSES").split(separator: " ").map(String.init),
            rootAddress: values["ROOT_ADDRESS"],
            rshWrapper: try value("PVM_RSH"),
            masterPID: Int32(try value("MASTER_PID")) ?? -1,
            masterSocket: try value("MASTER_SOCKET"),
            masterTemporaryDirectory: try value("MASTER_TMP"),
            virtualMachineID: try value("PVM_VMID"),
            script: script)
    }

    /// Stops every process of the run by PID and removes its namespaces, links and directories.
    /// Idempotent. Close any `PVMEngine` attached to the master first: a stopping pvmd sends
    /// SIGTERM to every enrolled task, the test process included.
    public func down(timeout: Duration = .seconds(60)) async throws {
        let output = try await TestHostsScript.run(script, ["down", prefix], environment: [:], timeout: timeout)
        guard output.status == 0 else {
            throw TestHostsError(command: "testhosts down \(prefix)", status: output.status, output: output.stderr)
        }
    }

    /// The PIDs of every process now in host `name`'s network namespace (`ip netns pids`).
    public func processIDs(in name: String) async throws -> [Int32] {
        let namespace = names.firstIndex(of: name).map { namespaces[$0] } ?? name
        let output = try await TestHostsScript.run(TestHostsScript.ip, ["netns", "pids", namespace], environment: [:],
                                                   timeout: .seconds(10))
        guard output.status == 0 else {
            throw TestHostsError(command: "ip netns pids \(name)", status: output.status, output: output.stderr)
        }
        return output.stdout.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
    }

    /// The PID of the pvmd running in host `name`, if there is one.
    public func pvmdPID(of name: String) async throws -> Int32? {
        try await processIDs(in: name).first { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) == "pvmd"
        }
    }

    /// What of this run is still on the machine: namespaces, links, the run directory, live
    /// processes among `pids`. Empty after a complete `down`.
    public func leftovers(pids: [Int32] = []) async throws -> [String] {
        var found: [String] = []
        let namespaces = try await TestHostsScript.run(TestHostsScript.ip, ["netns", "list"], environment: [:],
                                                       timeout: .seconds(10))
        found += namespaces.stdout.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
            .filter { $0.hasPrefix(prefix + "h") }.map { "namespace \($0)" }
        let links = try await TestHostsScript.run(TestHostsScript.ip, ["-o", "link", "show"], environment: [:],
                                                  timeout: .seconds(10))
        found += links.stdout.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: ":", maxSplits: 2)
            guard fields.count > 1 else { return nil }
            let name = fields[1].trimmingCharacters(in: .whitespaces).split(separator: "@")[0]
            return name.hasPrefix(prefix) ? "link \(name)" : nil
        }
        if FileManager.default.fileExists(atPath: runDirectory) { found.append("directory \(runDirectory)") }
        for name in self.namespaces where FileManager.default.fileExists(atPath: "/etc/netns/\(name)") {
            found.append("directory /etc/netns/\(name)")
        }
        found += pids.filter(Self.isRunning).map { "process \($0)" }
        return found
    }

    /// Whether `pid` is a live process (a zombie, exited and waiting to be reaped, is not).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let end = stat.lastIndex(of: ")") else { return false }
        return stat[stat.index(after: end)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    static func defaultScript() -> String {
        if let path = ProcessInfo.processInfo.environment["SHOAL_TESTHOSTS_SCRIPT"] { return path }
        // Sources/ShoalTesting/TestHosts.swift → <package>/scripts/testhosts
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/testhosts").path
    }
}

/// Makes `count` test hosts, runs `body` with them and tears them down afterwards, also when
/// `body` throws.
public func withTestHosts<R: Sendable>(
    count: Int,
    reachable: Bool = false,
    _ body: (TestHosts) async throws -> R
) async throws -> R {
    let hosts = try await TestHosts.up(count: count, reachable: reachable)
    let result: Result<R, any Error>
    do {
        result = .success(try await body(hosts))
    } catch {
        result = .failure(error)
    }
    try await hosts.down()
    return try result.get()
}

/// `scripts/testhosts` (or a command it runs) failed.
public struct TestHostsError: Error, CustomStringConvertible {
    /// What was run.
    public let command: String
    /// Its exit status.
    public let status: Int32
    /// What it said.
    public let output: String

    public var description: String {
        "\(command) failed (status \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))"
    }
}

/// Numbers the runs of one process, for unique prefixes.
enum TestHostsCounter {
    private static let counter = Atomic<Int>(0)

    static func next() -> Int {
        counter.add(1, ordering: .relaxed).newValue
    }
}
