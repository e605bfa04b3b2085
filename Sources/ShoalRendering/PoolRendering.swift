import ShoalAPI
/// `shoal pool`: one row per host, then the totals.
///
/// ```text
/// HOST            SLOTS  USED  FREE  LEASES
/// c1                  2     2     0  L-000001, L-000003
/// c2 (cordoned)       2     1     0  L-000002
/// total: 2 hosts      4     3     0
/// ```
///
/// A cordoned (`shoal drain`) or down host has no free slots whatever it holds.
public func render(pool: PoolView, width: Int? = nil) -> String {
    guard !pool.hosts.isEmpty else { return "No hosts in the pool." }
    var table = TextTable(columns: [
        .init("HOST", truncatable: true), .init("SLOTS", alignment: .right), .init("USED", alignment: .right),
        .init("FREE", alignment: .right), .init("LEASES", truncatable: true),
    ])
    for host in pool.hosts {
        let notes = (host.down ? ["down"] : []) + (host.cordoned ? ["cordoned"] : [])
        let name = notes.isEmpty ? host.name : "\(host.name) (\(notes.joined(separator: ", ")))"
        table.append([
            name, String(host.slots), String(host.used), String(host.free),
            host.leases.isEmpty ? "-" : host.leases.joined(separator: ", "),
        ])
    }
    let hostCount = pool.hosts.count == 1 ? "1 host" : "\(pool.hosts.count) hosts"
    table.append([
        "total: \(hostCount)", String(pool.hosts.map(\.slots).reduce(0, +)),
        String(pool.hosts.map(\.used).reduce(0, +)), String(pool.hosts.map(\.free).reduce(0, +)),
    ])
    return table.render(width: width)
}
