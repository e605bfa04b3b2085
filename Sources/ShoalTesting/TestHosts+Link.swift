/// Cutting a test host off the network and restoring it, for fault injection.
extension TestHosts {
    /// The root-namespace end of host `name`'s veth (`PREFIXv<i>`, on the bridge); its other
    /// end is the host's `eth0`.
    public func link(of name: String) -> String? {
        names.firstIndex(of: name).map { "\(prefix)v\($0)" }
    }

    /// Takes host `name`'s link down (`ip link set PREFIXv<i> down`: its `eth0` loses carrier,
    /// and every packet to or from it is dropped) or brings it up again. Its processes keep
    /// running; only the network between it and the rest is cut.
    public func setLink(of name: String, up: Bool) async throws {
        guard let link = link(of: name) else {
            throw TestHostsError(command: "ip link set", status: -1, output: "no host \(name) in \(names)")
        }
        let output = try await TestHostsScript.run(TestHostsScript.ip, ["link", "set", link, up ? "up" : "down"],
                                                   environment: [:], timeout: .seconds(10))
        guard output.status == 0 else {
            throw TestHostsError(command: "ip link set \(link) \(up ? "up" : "down")", status: output.status, output: output.stderr)
        }
    }
}
