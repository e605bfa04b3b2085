import Foundation
import ShoalAPI
import ShoalClient
import ShoalCore
import ShoalTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// docs/operations.md followed on six hosts, as a user would: network namespaces with their own
/// hostnames and `/etc/hosts`, a real `sshd` on each pool host (Debian's openssh-server, started
/// here, never as the system service) and `PVM_RSH` set to ssh. The broker runs on its own host,
/// its API over TLS (a certificate made here), and starts the pool over ssh; front-ends `fe-a`
/// and `master2` run on theirs and register over the network, trusting that certificate; the
/// load and the views come from outside (the root namespace).
@Suite("multi-host over ssh", .serialized)
struct MultiHostTests {
    @Test("the pool comes up over ssh; front-ends on other hosts register, lease under load and give back; the views work over the network; nothing is left")
    func clusterOverSSH() async throws {
        try await PVMEnrolmentLock.shared.withLock {
            let hosts = try await TestHosts.up(count: 6, reachable: true, names: ["broker", "fe-a", "master2", "c1", "c2", "c3"])
            let run = SSHCluster(hosts)
            do {
                try await run.check()
            } catch {
                run.stop()
                try await hosts.down()
                throw error
            }
            run.stop()
            try await hosts.down()
            #expect(try await hosts.leftovers(pids: run.pids).isEmpty, "everything it made is gone")
        }
    }
}

private final class SSHCluster: @unchecked Sendable {
    let hosts: TestHosts
    let directory: String
    var processes: [String: ManagedProcess] = [:]
    var pids: [Int32] { processes.values.map(\.pid) }
    var pool: [String] { Array(hosts.names[3...]) }
    var brokerURL: String { "https://\(hosts.addresses[0]):7070" }
    var certificate: TestCertificate?

    init(_ hosts: TestHosts) {
        self.hosts = hosts
        // In the run directory: `down` removes it with everything else.
        directory = hosts.runDirectory + "/ssh"
    }

    func check() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try makeKeys()
        for host in pool { try await startSSHD(on: host) }
        let ssh = try writeSSHWrapper()
        let probe = try ProcessRunner.run(URL(fileURLWithPath: hosts.rshWrapper), [hosts.names[0], ssh, "c1", "hostname"], timeout: 20)
        try #require(probe.status == 0 && probe.stdout.contains("c1"), "ssh from the broker's host to c1: \(probe.stdout) \(probe.stderr)")

        // The broker on its host, PVM_RSH=ssh: it starts its pool's pvmd and adds c1–c3 over ssh.
        // Beyond loopback its API speaks TLS; the workers are told to trust the certificate.
        let certificate = try TestCertificate.make(addresses: [hosts.addresses[0]])
        self.certificate = certificate
        let ca = certificate.certificatePath
        let state = directory + "/state"
        let clusterFile = "hosts:\n" + pool.map { "  - name: \($0)\n    slots: 1\n" }.joined()
        try clusterFile.write(toFile: directory + "/cluster.yaml", atomically: true, encoding: .utf8)
        let started = ContinuousClock.now
        let broker = try start("broker", on: 0, ["/usr/bin/env", "PVM_RSH=\(ssh)", try ProcessRunner.builtProduct("shoal").path, "broker",
                                                 "--cluster", directory + "/cluster.yaml", "--state-dir", state, "--host", "0.0.0.0", "--port", "7070",
                                                 "--tls-certificate", ca, "--tls-key", certificate.keyPath, "--ca-file", ca],
                               ready: "shoal broker listening on")
        #expect(broker.firstLine.contains(brokerURL), "a usable URL in the ready line: \(broker.firstLine)")
        let client = try BrokerClient(baseURL: brokerURL, token: nil, caFile: ca)
        defer { Task { await client.close() } }
        let poolUp = await eventually(timeout: .seconds(30)) { try await client.pool().hosts.allSatisfy { !$0.down } }
        #expect(poolUp, "c1–c3 joined over ssh")
        print("multi-host: the pool came up over ssh \(ContinuousClock.now - started) after the broker started")
        for host in pool {
            #expect(try await hosts.pvmdPID(of: host) != nil, "a pvmd on \(host), started by ssh")
        }

        // Front-ends on their own hosts, the token given as SHOAL_TOKEN (another machine has no state directory).
        let token = try BrokerToken.read(stateDirectory: state)
        try startFrontend("a", on: 1, token: token, ca: ca, backends: "{min: 0, max: 3}")
        try startFrontend("b", on: 2, token: token, ca: ca, backends: "{min: 0, max: 1}")
        let registered = await eventually(timeout: .seconds(20)) {
            Set(try await client.services().flatMap(\.frontends)) == ["fe-a", "master2"]
        }
        #expect(registered, "both registered over the network")

        // Load from outside on fe-a: it leases the whole pool, and nothing fails.
        let load = LoadGenerator.start(host: hosts.addresses[1], port: 8080, path: "/doc", connections: 16)
        let leased = await eventually(timeout: .seconds(40)) {
            try await client.leases().count { $0.service == "a" && $0.state == .active } == 3
        }
        #expect(leased, "fe-a leased c1–c3 under load")
        try await Task.sleep(for: .seconds(2))

        // The views, from outside, over the network.
        for (command, expected) in [("pool", pool), ("leases", ["fe-a"] + pool), ("services", ["fe-a", "master2"])] {
            let view = try ProcessRunner.runProduct("shoal", [command, "--broker", brokerURL, "--ca-file", ca], timeout: 20)
            #expect(view.status == 0, "shoal \(command): \(view.stderr)")
            for word in expected { #expect(view.stdout.contains(word), "shoal \(command) shows \(word): \(view.stdout)") }
        }

        // The workers on c1–c3 asked the broker about their leases over TLS, trusting its certificate.
        let metrics = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/curl"), ["-sS", "--cacert", ca, brokerURL + "/metrics"], timeout: 20)
        let workerChecks = metrics.stdout.split(separator: "\n").filter {
            $0.hasPrefix("shoal_broker_api_requests_total") && $0.contains(#"route="/v1/leases/{id}/worker""#) && $0.contains(#"status="200""#)
        }
        #expect(!workerChecks.isEmpty, "workers reached the broker over TLS: \(metrics.stdout.suffix(2000)) \(metrics.stderr)")

        let counts = load.stop()
        #expect(counts.sent > 500 && counts.failed == 0 && counts.sent == counts.succeeded, "\(counts.errors), \(counts)")
        print("multi-host: \(counts.sent) sent, \(counts.succeeded) answered, \(counts.failed) failed through fe-a")

        // fe-a stops (SIGTERM): its leases go back and their workers stop on c1–c3.
        processes.removeValue(forKey: "fe-a")?.stop(timeout: 20)
        let released = await eventually(timeout: .seconds(20)) {
            try await client.leases().filter { $0.service == "a" }.isEmpty
        }
        #expect(released, "fe-a gave its leases back")
        let workersGone = await eventually(timeout: .seconds(20)) {
            var left = 0
            for host in self.pool { left += try await self.processes(in: host, matching: "worker").count }
            return left == 0
        }
        #expect(workersGone, "no worker left on c1–c3")
    }

    // MARK: ssh

    private func makeKeys() throws {
        for key in ["id", "hostkey"] {
            let made = try ProcessRunner.run(URL(fileURLWithPath: "/usr/bin/ssh-keygen"),
                                             ["-q", "-t", "ed25519", "-N", "", "-C", "shoal-test", "-f", "\(directory)/\(key)"])
            try #require(made.status == 0, "ssh-keygen: \(made.stderr)")
        }
        try FileManager.default.copyItem(atPath: directory + "/id.pub", toPath: directory + "/authorized_keys")
        // sshd's privilege separation directory (Debian's service would make it).
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
    }

    /// A real sshd in `host`'s namespace (with its hostname), on its address, port 22. What
    /// operations.md asks of a pool host: root may start a pvmd (`PVM_ALLOW_ROOT`), and each host
    /// has a `PVM_TMP` of its own (they share one filesystem here).
    private func startSSHD(on host: String) async throws {
        let index = try #require(hosts.names.firstIndex(of: host))
        let config = "\(directory)/sshd-\(host).conf"
        try """
            ListenAddress \(hosts.addresses[index]):22
            HostKey \(directory)/hostkey
            PidFile \(directory)/sshd-\(host).pid
            AuthorizedKeysFile \(directory)/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            SetEnv PVM_ALLOW_ROOT=1 PVM_TMP=\(hosts.runDirectory)/\(host)

            """.write(toFile: config, atomically: true, encoding: .utf8)
        let sshd = try ManagedProcess.start(URL(fileURLWithPath: hosts.rshWrapper), [
            host, "/bin/sh", "-c", "echo started; exec /usr/sbin/sshd \"$@\"", "sshd", "-D", "-e", "-f", config,
        ], readyPrefix: "started", standardErrorFile: "\(directory)/sshd-\(host).log")
        processes["sshd-\(host)"] = sshd
        let listening = await eventually(timeout: .seconds(10)) {
            guard let socket = try? LoopbackSocket.connect(host: self.hosts.addresses[index], port: 22) else { return false }
            close(socket)
            return true
        }
        try #require(listening, "sshd on \(host): \((try? String(contentsOfFile: "\(directory)/sshd-\(host).log", encoding: .utf8)) ?? "")")
    }

    /// `PVM_RSH`: ssh with this run's key and no host-key question (ssh reads `~/.ssh/config`
    /// from the password file, not `$HOME`, so the options go in a file of the run's own).
    private func writeSSHWrapper() throws -> String {
        try """
            Host *
              User root
              IdentityFile \(directory)/id
              IdentitiesOnly yes
              StrictHostKeyChecking no
              UserKnownHostsFile /dev/null
              BatchMode yes
              LogLevel ERROR
              ConnectTimeout 5

            """.write(toFile: directory + "/ssh_config", atomically: true, encoding: .utf8)
        let wrapper = directory + "/ssh"
        try "#!/bin/sh\nexec /usr/bin/ssh -F \(directory)/ssh_config \"$@\"\n".write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        return wrapper
    }

    // MARK: Processes

    /// Runs `command` on host `index` (its namespace and hostname) until its ready line.
    private func start(_ name: String, on index: Int, _ command: [String], ready: String) throws -> ManagedProcess {
        let process = try ManagedProcess.start(URL(fileURLWithPath: hosts.rshWrapper), [hosts.names[index]] + command,
                                               readyPrefix: ready, timeout: 60, standardErrorFile: "\(directory)/\(name).log")
        processes[name] = process
        return process
    }

    private func startFrontend(_ service: String, on index: Int, token: String, ca: String, backends: String) throws {
        let frontend = hosts.names[index]
        let manifest = "\(directory)/\(service).yaml"
        try """
            name: \(service)
            frontend: \(frontend)
            command: shoal-webserver
            args: ["--port", "{port}", "--size", "1024", "--delay-ms", "20", "--concurrency", "4"]
            port: 8080
            concurrency: 4
            thresholds: {low: 1, high: 3}
            backends: \(backends)
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        let process = try start(frontend, on: index, ["/usr/bin/env", "SHOAL_TOKEN=\(token)", try ProcessRunner.builtProduct("shoal").path,
                                                      "frontend", manifest, "--listen-host", "0.0.0.0", "--port", "8080", "--broker", brokerURL,
                                                      "--ca-file", ca],
                                ready: "shoal frontend")
        #expect(ReadyLine.frontend(process.firstLine)?.port == 8080, "\(process.firstLine)")
    }

    func processes(in host: String, matching word: String) async throws -> [Int32] {
        try await hosts.processIDs(in: host).filter { pid in
            let cmdline = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return cmdline.replacingOccurrences(of: "\0", with: " ").contains(word)
        }
    }

    /// Front-ends first (they give their leases back), then the broker, then the sshds.
    func stop() {
        for name in ["fe-a", "master2", "broker"] { processes.removeValue(forKey: name)?.stop(timeout: 20) }
        for process in processes.values { process.stop() }
        certificate?.remove()
    }

    func eventually(timeout: Duration, _ condition: () async throws -> Bool) async -> Bool {
        await Cluster.eventually(timeout: timeout) { (try? await condition()) == true }
    }
}

