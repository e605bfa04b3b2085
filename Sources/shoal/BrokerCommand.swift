import ArgumentParser
import Foundation
import Logging
import NIOSSL
import PVM
import ServiceLifecycle
import ShoalAPI
import ShoalBroker
import ShoalCore
import ShoalInstance
import ShoalManifest
import Synchronization
import UnixSignals

/// `shoal broker`: the one broker of a cluster — pool, lease table, arbitration and the API.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Own the pool of back-ends and lease them to front-ends (HTTP/JSON API on loopback).",
        discussion: """
            The pool is a PVM virtual machine: the hosts of --cluster, or this host with --slots slots. \
            Leases live in STATE_DIR/broker.sqlite; the API token is STATE_DIR/token (mode 0600). \
            Stopping the broker leaves the pool and its workers running: a restarted broker adopts \
            them, and front-ends keep serving meanwhile. Prints one line 'shoal broker listening on \
            http://HOST:PORT ...' once it serves.
            """
    )

    @Option(help: "Cluster file (YAML) listing the pool's hosts and their slots.") var cluster: String?
    @Option(help: "Slots of the local host when no --cluster is given.") var slots = 3
    @Option(help: "State directory (default: SHOAL_STATE_DIR, else ~/.local/state/shoal).") var stateDir: String?
    @Option(help: "Address the API listens on. Anything but loopback exposes the pool's API to that network.")
    var host = BrokerAPI.defaultHost
    @Option(help: "API port (0: any free port).") var port = BrokerAPI.defaultPort
    @Option(help: "Attach to this running pvmd's socket instead of running the pool's own pvmd.") var pvmSocket: String?
    @Option(help: "Seconds a lease lives without its front-end's heartbeat.") var leaseTTL: Double = 10
    @Option(help: ArgumentHelp(
        "etcd members (http://HOST:PORT, comma-separated): run as one of several brokers, active or standing by, the lease table in etcd (docs/ha.md).",
        valueName: "URLS"))
    var etcd: String?
    @Option(help: "With --etcd: this broker's name among the brokers (default: the host name).") var name: String?
    @Option(help: "With --etcd: where the cluster's keys live in etcd.") var etcdPrefix = "/shoal/"
    @Option(help: "With --etcd: seconds the active broker's leadership lives without renewal.") var leaderTTL: Double = 3
    @Option(help: "The API URL workers, and with --etcd the other brokers, are told (default: from --host and --port).")
    var advertise: String?
    @Option(help: "The API's TLS certificate chain (PEM): serve HTTPS. Needed, with --tls-key, to listen beyond loopback.")
    var tlsCertificate: String?
    @Option(help: "The private key (PEM) of --tls-certificate.") var tlsKey: String?
    @Option(help: "The CA (PEM) the workers trust the API's certificate with (default: the system's roots).") var caFile: String?
    @Flag(help: "Serve plain HTTP beyond loopback all the same: the token then crosses the network in clear.")
    var insecureHTTP = false
    @Option(help: "Days the event log and finished leases are kept.") var keepHistoryDays: Double = 7
    @Option(help: "Events kept at most (the newest).") var keepEvents = 1_000_000
    @OptionGroup var daemon: DaemonOptions

    func validate() throws {
        guard (1...64).contains(slots) else { throw ValidationError("--slots must be 1...64") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard leaseTTL >= 1, leaseTTL <= 3600 else { throw ValidationError("--lease-ttl must be 1...3600 seconds") }
        guard leaderTTL >= 2, leaderTTL <= 60 else { throw ValidationError("--leader-ttl must be 2...60 seconds") }
        guard keepHistoryDays > 0, keepHistoryDays <= 3650 else { throw ValidationError("--keep-history-days must be above 0 and at most 3650") }
        guard keepEvents >= 1000 else { throw ValidationError("--keep-events must be at least 1000") }
        if etcd != nil, port == 0 { throw ValidationError("--etcd needs a fixed --port: the other brokers and the workers are told it") }
        guard etcdPrefix.hasPrefix("/"), etcdPrefix.hasSuffix("/") else { throw ValidationError("--etcd-prefix must start and end with /") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-certificate and --tls-key go together") }
        if tlsCertificate == nil, !insecureHTTP, !HostAddress.isLoopback(host) {
            throw ValidationError("""
                --host \(host) is beyond loopback: the API's token would cross the network in clear. \
                Give --tls-certificate and --tls-key (clients then use https:// and --ca-file), \
                or --insecure-http on a network you trust
                """)
        }
    }

    /// The API's TLS, from `--tls-certificate` and `--tls-key`; a file that does not load is an
    /// error before anything listens.
    private func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tlsCertificate, let tlsKey else { return nil }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: tlsKey, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        } catch {
            printError("shoal broker: cannot use --tls-certificate \(tlsCertificate) with --tls-key \(tlsKey): \(error)")
            throw ExitCode.failure
        }
    }

    /// The URL this broker's API is reached at, from `bound` (the port it listens on).
    private func advertisedURL(port bound: Int) -> String {
        advertise ?? "\(tlsCertificate == nil ? "http" : "https")://\(["0.0.0.0", "::"].contains(host) ? HostAddress.advertised() : host):\(bound)"
    }

    func run() async throws {
        let logger = daemon.makeLogger(label: "shoal.broker")
        let tls = try tlsConfiguration()
        let clusterHosts = try cluster.map(loadCluster)
        let state = StateDirectory.resolve(stateDir)
        var token: String
        let lock: StateLock
        do {
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            lock = try await StateLock.acquire(stateDirectory: state, logger: logger)
            token = try BrokerToken.loadOrCreate(stateDirectory: state)
        } catch {
            printError("shoal broker: \(error)")
            throw ExitCode.failure
        }

        // With standby brokers: wait to be elected, then take the lease table over from etcd.
        var election: BrokerElection?
        var replica: EtcdReplica?
        var brokerURLs = [advertisedURL(port: port)]
        if let etcd {
            let client = try EtcdClient(endpoints: etcd.split(separator: ",").map(String.init))
            var leadership = Leadership.Configuration()
            leadership.ttl = .milliseconds(Int64(leaderTTL * 1000))
            let me = BrokerElection(etcd: client, prefix: etcdPrefix, name: name ?? ProcessInfo.processInfo.hostName,
                                    url: brokerURLs[0], configuration: leadership, announceStandby: announceReady, logger: logger)
            let term = try await me.campaign()
            token = try await Self.sharedToken(token, etcd: client, key: etcdPrefix + "token", stateDirectory: state)
            brokerURLs = try await client.range(prefix: me.brokersPrefix).map { String(decoding: $0.value, as: UTF8.self) }
            replica = EtcdReplica(etcd: client, prefix: etcdPrefix, leaderKey: me.leaderKey, term: term)
            await me.watch(replica!)
            election = me
        }

        // The pool's pvmd: the one at --pvm-socket, or the broker's own (started anew if it dies).
        let poolStartedNow = Mutex(false)
        let attach: PVMLauncher.Attach = { [pvmSocket] in
            var socket = pvmSocket
            if socket == nil {
                let daemon = try await PersistentPVMDaemon.ensure(directory: state + "/pvm", logger: logger)
                poolStartedNow.withLock { $0 = daemon.startedNow }
                socket = daemon.socketPath
            }
            return try await PVMEngine.attach(socketPath: socket, logger: logger)
        }
        let engine = try await attach()
        let hosts: [PoolHost]
        if let clusterHosts {
            hosts = clusterHosts
        } else {
            hosts = [PoolHost(name: try await engine.hosts()[0].name, slots: slots)]
        }
        var configuration = Broker.Configuration(hosts: hosts)
        configuration.leaseTTL = .milliseconds(Int64(leaseTTL * 1000))
        configuration.retention.maxAge = .milliseconds(Int64(keepHistoryDays * 86_400_000))
        configuration.retention.maxEvents = keepEvents
        let store = try LeaseStore(directory: state, replica: replica, logger: logger)
        try await store.takeOver()
        let launcher = PVMLauncher(engine: engine, attach: attach, program: try ExecutableLookup.currentExecutable(),
                                   workerArguments: ["--log-level", "\(daemon.logLevel)", "--log-format", daemon.logFormat.rawValue]
                                       + (caFile.map { ["--ca-file", $0] } ?? []),
                                   poolLog: pvmSocket.map(PersistentPVMDaemon.logBeside(socket:)) ?? PersistentPVMDaemon.logPath(directory: state + "/pvm"),
                                   logger: logger)
        let broker = Broker(configuration: configuration, store: store, launcher: launcher, logger: logger)
        try await broker.recover(poolIsNew: poolStartedNow.withLock { $0 })

        let poolText = hosts.map { "\($0.name)×\($0.slots)" }.joined(separator: " ")
        let server = try BrokerHTTPServer(operations: broker, token: token, host: host, port: port, tls: tls,
                                          logger: logger) { [self, brokerURLs] bound in
            let url = advertisedURL(port: bound)
            launcher.setBrokerURLs(etcd == nil ? [url] : brokerURLs)
            announceReady("shoal broker listening on \(url) (pool \(poolText); state \(state))")
        }
        // Stopped in reverse order: the broker first, which answers every long poll at once, so the
        // API server has nothing to wait for; the election last, giving leadership up once nothing
        // is granted any more.
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = (election.map { [.init(service: $0)] } ?? [])
            + [.init(service: launcher), .init(service: server), .init(service: broker)]
        do {
            try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
        } catch let lost as BrokerElection.LeadershipLost {
            // Another broker is (or may be) active: this one's pool must not serve on beside it.
            await launcher.close()
            if pvmSocket == nil { await PersistentPVMDaemon.stop(directory: state + "/pvm", logger: logger) }
            printError("shoal broker: leadership lost (\(lost)); exiting so that a service manager starts this broker again as a standby")
            throw ExitCode(3)
        }
        await launcher.close()
        try store.close()
        _ = lock
        logger.notice("broker stopped; the pool and its workers keep running for the next broker")
    }

    /// The token every broker of the cluster uses (front-ends keep theirs across a failover):
    /// etcd's, or this broker's if it is the first; written to the state directory for the CLI.
    private static func sharedToken(_ mine: String, etcd: EtcdClient, key: String, stateDirectory: String) async throws -> String {
        let result = try await etcd.transaction(ifKey: key, createdAt: 0, then: [.put(key: key, value: Data(mine.utf8))])
        guard !result.succeeded, let shared = result.current.map({ String(decoding: $0.value, as: UTF8.self) }), shared != mine else {
            return mine
        }
        let path = stateDirectory + "/" + BrokerAPI.tokenFileName
        try? FileManager.default.removeItem(atPath: path)
        guard FileManager.default.createFile(atPath: path, contents: Data((shared + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
            throw BrokerError(.invalid, "cannot write the cluster's token to \(path)")
        }
        return shared
    }

    private func loadCluster(_ path: String) throws -> [PoolHost] {
        switch ClusterLoader().load(path: path) {
        case .success(let hosts):
            return hosts
        case .failure(let problems):
            problems.diagnostics.forEach { printError($0.description) }
            throw ExitCode.failure
        }
    }
}
