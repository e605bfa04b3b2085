import Foundation
import ShoalAPI
import ShoalCore
import Testing
import ShoalRendering

@Suite struct RenderingTests {
    static let utc = TimeZone(identifier: "UTC")!
    /// 2026-03-01 14:05:09.042 UTC.
    static let now: Int64 = 1_772_373_909_042

    // MARK: The table

    @Test func columnsArePaddedAndNumbersRightAligned() {
        var table = TextTable(columns: [.init("NAME"), .init("COUNT", alignment: .right), .init("NOTE")])
        table.append(["a", "7", "short"])
        table.append(["longer-name", "1234", ""])
        #expect(table.render() == """
            NAME         COUNT  NOTE
            a                7  short
            longer-name   1234
            """)
    }

    @Test func rowsAreFilledOrCutToTheColumns() {
        var table = TextTable(columns: [.init("A"), .init("B")])
        table.append(["1"])
        table.append(["2", "x", "dropped"])
        #expect(table.rows == [["1", ""], ["2", "x"]])
    }

    @Test func aWidthNarrowsTheWidestTruncatableColumnFirst() {
        var table = TextTable(columns: [
            .init("ID"), .init("NAME", truncatable: true), .init("LIST", truncatable: true), .init("N", alignment: .right),
        ])
        table.append(["L-1", "service-with-a-long-name", "one, two, three, four, five", "3"])
        let lines = table.render(width: 40).split(separator: "\n")
        #expect(lines.allSatisfy { $0.count <= 40 })
        #expect(lines[1] == "L-1  service-with-a…  one, two, thre…  3")
        // Untruncatable columns keep their width; a line still too long is cut at the end.
        #expect(table.render(width: 20).split(separator: "\n")[1] == "L-1  serv…  one,…  3")
        #expect(table.render(width: 12).split(separator: "\n").allSatisfy { $0.count <= 12 && $0.hasSuffix("…") })
    }

    // MARK: Durations and times

    @Test func durationsUseTheirTwoLargestUnits() {
        let cases: [(Int64, String)] = [
            (0, "0s"), (999, "0s"), (5_000, "5s"), (59_999, "59s"), (60_000, "1m"), (192_000, "3m12s"),
            (3_600_000, "1h"), (7_440_000, "2h4m"), (7_499_000, "2h4m"), (86_400_000, "1d"),
            (3 * 86_400_000 + 7 * 3_600_000 + 59_000, "3d7h"), (-4_000, "0s"),
        ]
        for (milliseconds, text) in cases {
            #expect(TimeText.duration(milliseconds: milliseconds) == text, "\(milliseconds) ms")
        }
    }

    @Test func timeLeftRoundsUp() {
        #expect(TimeText.remaining(milliseconds: 400) == "1s")
        #expect(TimeText.remaining(milliseconds: 3_000) == "3s")
        #expect(TimeText.remaining(milliseconds: 3_001) == "4s")
        #expect(TimeText.remaining(milliseconds: -5) == "0s")
    }

    @Test func timestampsHaveMilliseconds() {
        #expect(TimeText.timestamp(milliseconds: Self.now, timeZone: Self.utc) == "2026-03-01 14:05:09.042")
        #expect(TimeText.timestamp(milliseconds: 0, timeZone: Self.utc) == "1970-01-01 00:00:00.000")
        #expect(TimeText.timestamp(milliseconds: -1, timeZone: Self.utc) == "1969-12-31 23:59:59.999")
        #expect(TimeText.timestamp(milliseconds: Self.now, timeZone: TimeZone(secondsFromGMT: 3600)!) == "2026-03-01 15:05:09.042")
    }

    // MARK: Leases

    static func lease(
        _ id: String, _ state: LeaseState, age: Int64, host: String? = "c1", inFlight: Int? = nil, queued: Int? = nil
    ) -> LeaseView {
        LeaseView(id: id, service: "a", frontend: "a@fe-a", host: host, state: state, inFlight: inFlight, queued: queued,
                  requestedAt: now - age, expiresAt: now + 25_000)
    }

    @Test func leasesShowStateAgeAndLoad() {
        var draining = Self.lease("L-000002", .draining, age: 7_440_000, host: "c2", inFlight: 8, queued: 3)
        draining.service = "master2"
        draining.frontend = "master2@fe"
        draining.drainReason = .preemption
        draining.drainDeadline = Self.now + 2_600
        var revoked = Self.lease("L-000004", .revoked, age: 5_000)
        revoked.revocation = .ttlExpired
        let leases = [
            Self.lease("L-000001", .active, age: 192_000, inFlight: 4),
            draining,
            Self.lease("L-000003", .requested, age: 1_000, host: nil),
            revoked,
        ]
        #expect(render(leases: leases, now: Self.now) == """
            LEASE     SERVICE  FRONTEND    HOST  STATE                             AGE      IN-FLIGHT
            L-000001  a        a@fe-a      c1    active                          3m12s              4
            L-000002  master2  master2@fe  c2    draining (preemption, 3s left)   2h4m  8 (+3 queued)
            L-000003  a        a@fe-a      -     requested                          1s              -
            L-000004  a        a@fe-a      c1    revoked (ttl-expired)              5s              -
            """)
    }

    @Test func aDrainPastItsDeadlineSaysSo() {
        var lease = Self.lease("L-000009", .draining, age: 60_000)
        lease.drainReason = .maintenance
        lease.drainDeadline = Self.now - 1
        #expect(render(leases: [lease], now: Self.now).contains("draining (maintenance, deadline passed)"))
        lease.drainReason = nil
        lease.drainDeadline = nil
        #expect(render(leases: [lease], now: Self.now).contains("  draining  "))
    }

    @Test func noLeasesIsASentence() {
        #expect(render(leases: [], now: Self.now) == "No leases.")
    }

    // MARK: Pool and services

    @Test func thePoolShowsNotesAndTotals() {
        let pool = PoolView(hosts: [
            .init(name: "c1", slots: 2, used: 2, leases: ["L-000001", "L-000003"]),
            .init(name: "c2", slots: 2, used: 1, cordoned: true, leases: ["L-000002"]),
            .init(name: "c3", slots: 4, used: 0, down: true, leases: []),
            .init(name: "c4", slots: 12, used: 1, leases: ["L-000005"]),
        ])
        #expect(render(pool: pool) == """
            HOST            SLOTS  USED  FREE  LEASES
            c1                  2     2     0  L-000001, L-000003
            c2 (cordoned)       2     1     0  L-000002
            c3 (down)           4     0     0  -
            c4                 12     1    11  L-000005
            total: 4 hosts     20     4    11
            """)
        #expect(render(pool: PoolView(hosts: [])) == "No hosts in the pool.")
        #expect(render(pool: PoolView(hosts: [.init(name: "c1", slots: 1, used: 0, leases: [])])).hasSuffix("total: 1 host      1     0     1"))
    }

    @Test func servicesShowTheirClaimAndShare() {
        let services = [
            ServiceView(name: "a", frontends: ["a@fe-a"], minBackends: 0, maxBackends: 3, priority: 0, weight: 1,
                        held: 2, waiting: 0, fairShare: 2, backendSeconds: 25, requestsServed: 2000,
                        backendSecondsPerThousandRequests: 12.5),
            ServiceView(name: "master2", frontends: ["m@fe-1", "m@fe-2"], minBackends: 1, maxBackends: 12, priority: 10,
                        weight: 3, held: 1, waiting: 2, fairShare: 6),
        ]
        #expect(render(services: services) == """
            SERVICE  FRONT-ENDS      MIN  MAX  PRIORITY  WEIGHT  HELD  WAITING  SHARE  BACKEND-S/1K REQ
            a        a@fe-a            0    3         0       1     2        0      2              12.5
            master2  m@fe-1, m@fe-2    1   12        10       3     1        2      6                 -
            """)
        #expect(render(services: []) == "No services registered.")
    }

    // MARK: Events and explanations

    static let grant = EventView(id: 42, time: now, kind: "grant", lease: "L-000001", service: "a", host: "c1",
                                 fromState: .requested, toState: .granted, reason: "slot 1 of 2 on c1",
                                 details: #"{"free":1}"#)

    @Test func anEventIsOneLine() {
        #expect(render(event: Self.grant, timeZone: Self.utc)
            == "#42 2026-03-01 14:05:09.042 grant   L-000001 a c1 requested→granted: slot 1 of 2 on c1")
        let note = EventView(id: 7, time: Self.now, kind: "host-cordoned", host: "c2", reason: "operator drain")
        #expect(render(event: note, timeZone: Self.utc) == "#7 2026-03-01 14:05:09.042 host-cordoned - - c2: operator drain")
    }

    @Test func anExplanationShowsTheLeaseThenItsHistory() {
        var lease = Self.lease("L-000001", .active, age: 192_000, inFlight: 4, queued: 1)
        lease.endpoint = "c1:40123"
        let request = EventView(id: 41, time: Self.now - 192_000, kind: "request", lease: "L-000001", service: "a",
                                toState: .requested, reason: "all 1 back-ends High")
        let text = render(explanation: LeaseExplanation(lease: lease, events: [request, Self.grant]), now: Self.now, timeZone: Self.utc)
        #expect(text == """
            lease      L-000001
            service    a (front-end a@fe-a)
            host       c1
            endpoint   c1:40123
            state      active
            age        3m12s
            expires    in 25s
            in flight  4 (+1 queued)

            history
              #41 2026-03-01 14:01:57.042 request L-000001 a - -→requested: all 1 back-ends High
              #42 2026-03-01 14:05:09.042 grant   L-000001 a c1 requested→granted: slot 1 of 2 on c1
                  {"free":1}
            """)
    }

    @Test func aFinishedLeaseHasNoExpiry() {
        var lease = Self.lease("L-000004", .revoked, age: 5_000, host: nil)
        lease.revocation = .hostFailed
        let text = render(explanation: LeaseExplanation(lease: lease, events: []), now: Self.now, timeZone: Self.utc)
        #expect(text == """
            lease    L-000004
            service  a (front-end a@fe-a)
            host     -
            state    revoked (host-failed)
            age      5s

            history: no events
            """)
    }
}
