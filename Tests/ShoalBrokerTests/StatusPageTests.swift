import Foundation
import HTTPTypes
import Logging
import NIOCore
import ServiceLifecycle
import ShoalAPI
@testable import ShoalBroker
import ShoalCore
import ShoalTesting
import Testing

/// The status page in a real browser: a broker (real lease store, fake launcher) serves it on a
/// real socket, headless Chromium loads it, runs its scripts and dumps the DOM or takes a
/// screenshot. Set `SHOAL_STATUS_SCREENSHOT=PATH` to keep the screenshot (docs/status-page.png).
@Suite("Status page")
struct StatusPageTests {
    private static let hosts = [PoolHost(name: "c1", slots: 2), PoolHost(name: "c2", slots: 2), PoolHost(name: "c3", slots: 1)]
    /// Fast samples, so a few seconds of test make a chart with steps in it. The broker's clock
    /// follows the wall clock here and no worker reports its load: nothing may expire meanwhile.
    private static func configure(_ configuration: inout Broker.Configuration) {
        configuration.history = LeaseHistory.Configuration(interval: .milliseconds(100), window: .seconds(60))
        configuration.leaseTTL = .seconds(3600)
        configuration.health.workerSilenceLimit = .seconds(3600)
    }

    @Test("GET / serves one self-contained page; /v1/history the samples")
    func pageAndHistoryRoutes() async throws {
        try await withBroker(hosts: Self.hosts, configure: Self.configure, runningWork: false) { h in  // The broker runs itself here.
            try await h.register("a")
            try await withStatusServer(h.broker) { port in
                let client = LiveHTTPClient(port: port)
                for path in ["/", "/status"] {
                    let page = try await client.execute(uri: path, method: .get)
                    #expect(page.status == .ok)
                    #expect(page.headers[.contentType] == "text/html; charset=utf-8")
                    #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'none'") == true)
                    let html = String(buffer: page.body)
                    #expect(html.hasPrefix("<!doctype html>"))
                    // Self-contained: nothing loaded from anywhere else.
                    #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("src="))
                }
                _ = try await h.activeLease("a")
                try await Task.sleep(for: .milliseconds(350))
                let answer = try await client.execute(uri: "/v1/history", method: .get)
                #expect(answer.status == .ok)
                let view = try JSONDecoder().decode(LeaseHistoryView.self, from: Data(answer.body.readableBytesView))
                #expect(view.intervalMilliseconds == 100)
                #expect(view.samples.count >= 2)
                #expect(view.samples.last?.held == ["a": 1])
            }
        }
    }

    @Test("The history keeps the newest samples of its window, oldest first")
    func historyRing() async {
        let history = LeaseHistory(configuration: .init(interval: .seconds(2), window: .seconds(6)))
        for time in 1...5 { await history.record(.init(time: Int64(time), held: ["a": time])) }
        let view = await history.view()
        #expect(view.samples.map(\.time) == [3, 4, 5])
        #expect(view.windowMilliseconds == 6000)
        let leases = [
            LeaseView(id: "L-1", service: "a", frontend: "fe-a", state: .active, requestedAt: 0, expiresAt: 0),
            LeaseView(id: "L-2", service: "a", frontend: "fe-a", state: .draining, requestedAt: 0, expiresAt: 0),
            LeaseView(id: "L-3", service: "b", frontend: "fe-b", state: .requested, requestedAt: 0, expiresAt: 0),
        ]
        #expect(LeaseHistory.sample(of: leases, at: Timestamp(milliseconds: 7)) == .init(time: 7, held: ["a": 2], waiting: ["b": 1]))
    }

    @Test("Headless Chromium renders the pool, the chart, the leases and the events, and follows changes live",
          .timeLimit(.minutes(5)))
    func inChromium() async throws {
        let chromium = try #require(HeadlessChromium.find(), "headless Chromium is needed: `make setup` installs Debian's chromium")
        try await withBroker(hosts: Self.hosts, configure: Self.configure, runningWork: false) { h in  // The broker runs itself here.
            try await withStatusServer(h.broker) { port in
                try await runInChromium(chromium, h, port: port)
            }
        }
    }
}

/// The browser part of the test: a scenario with some history, then screenshot and DOM checks,
/// then a change seen on a fresh load, then a change made while the page is open.
private func runInChromium(_ chromium: HeadlessChromium, _ h: BrokerHarness, port: Int) async throws {
    let url = "http://127.0.0.1:\(port)/"
    // The broker's clock follows the wall clock here, so ages and event times read true.
    let keepTime = { h.clock.advance(by: .milliseconds(max(0, Timestamp.now().milliseconds - h.clock.now.milliseconds))) }
    keepTime()
    for service in ["a", "b", "master2"] { try await h.register(service) }

    // A few seconds of history: a ramps up, b comes and starts to go, master2 starts, a waits.
    var tasks: [Int32] = []
    for service in ["a", "b", "a", "b", "master2"] {
        try await Task.sleep(for: .milliseconds(400))
        keepTime()
        tasks.append(try await h.activeLease(service).task)
    }
    try await Task.sleep(for: .milliseconds(400))
    keepTime()
    _ = try await h.broker.drain(lease: "L-000004", LeaseChangeRequest(reason: "load fell: every member Low for 5 s"))
    try await Task.sleep(for: .milliseconds(400))
    keepTime()
    let waiting = try await h.acquire("a")
    #expect(waiting.state == .requested, "the pool is full: a's third request waits")
    for (task, inFlight) in zip(tasks, [3, 1, 4, 0, 2]) {
        try await h.broker.handle(.load(task: task, inFlight: inFlight, queued: 0))
    }
    try await Task.sleep(for: .milliseconds(400))

    // The DOM after the scripts ran, and a screenshot: a real PNG of the window's size.
    let scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("shoal-status-\(UUID().uuidString)")
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let png = (scratch as NSString).appendingPathComponent("status.png")
    // Chromium's first start took over 60 s once, in a clean CI-like run where the whole suite
    // starts at once on two cores (isolated, the test takes 9 s); a hung browser still fails.
    let dom = try await chromium.dumpDOM(url, virtualTimeBudget: .milliseconds(1000), screenshot: png, width: 1280, height: 900,
                                         timeout: .seconds(150))
    let image = try Data(contentsOf: URL(fileURLWithPath: png))
    #expect(image.count > 30_000, "a page with tables and a chart, not a blank window: \(image.count) bytes")
    #expect(Array(image.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG")
    #expect(PNGSize(image) == PNGSize(width: 1280, height: 900))
    if let keep = ProcessInfo.processInfo.environment["SHOAL_STATUS_SCREENSHOT"] {
        try? FileManager.default.removeItem(atPath: keep)
        try FileManager.default.copyItem(atPath: png, toPath: keep)
    }

    let page = StatusDOM(dom)
    #expect(dom.count > page.html.count && !page.contains("${"), "the script is left out of the checks")
    #expect(page.updates >= 1, "the page loaded its data")
    #expect(page.rows("data-host") == ["c1", "c2", "c3"])
    #expect(page.rows("data-lease") == ["L-000001", "L-000002", "L-000003", "L-000004", "L-000005", "L-000006"])
    #expect(page.rows("data-service") == ["a", "b", "master2"], "the services table")
    #expect(page.contains(#"<span class="badge st-draining">draining</span>"#))
    #expect(page.contains(#"<span class="badge st-requested">requested</span>"#))
    #expect(page.contains(#"<span class="badge k-grant">grant</span>"#) && page.contains(#"<span class="badge k-drain">drain</span>"#))
    #expect(page.contains("5<small> / 5</small>"), "every slot is used")
    #expect(page.contains("capacity 5"))
    let chart = try #require(page.chart, "the chart was drawn")
    #expect(chart.samples >= 10, "about 3 s of samples at 10 a second: \(chart.samples)")
    #expect(chart.areas["a"]?.last == 2 && chart.areas["b"]?.last == 2 && chart.areas["master2"]?.last == 1, "\(chart.areas)")
    #expect(chart.areas.values.allSatisfy { $0.points == chart.samples })
    #expect(page.contains(#"<path class="waiting" data-max="1""#), "a request waits: a band above what is held")

    // A change, seen on a fresh load: b's draining lease is released, a's waiting request gets its slot.
    keepTime()
    _ = try await h.broker.release(lease: "L-000004", LeaseChangeRequest())
    try await h.broker.handle(.drained(task: tasks[3]))
    let fresh = StatusDOM(try await chromium.dumpDOM(url, virtualTimeBudget: .milliseconds(500)))
    #expect(!fresh.rows("data-lease").contains("L-000004"))
    #expect(fresh.rows("data-lease").contains("L-000006"))
    #expect(fresh.contains(#"<span class="badge k-release">release</span>"#))

    // Live: the page is open and long-polling the event log when service c asks for a lease; it
    // must show it without being reloaded. Virtual time stands still while the poll waits, so the run lasts
    // until the answer came and the page's budget ran out after it.
    try await h.register("c")
    try await waitForLongPolls(of: h.broker, toBe: false)  // A poll of an earlier run may still wait out its second.
    async let liveDOM = chromium.dumpDOM(url, virtualTimeBudget: .milliseconds(2500))
    try await waitForLongPolls(of: h.broker, toBe: true)
    keepTime()
    let late = try await h.acquire("c")
    let live = StatusDOM(try await liveDOM)
    #expect(live.rows("data-lease").contains(late.id), "the lease asked for while the page was open: \(live.rows("data-lease"))")
    #expect(live.contains(#"<span class="badge k-request">request</span></td><td class="mono">\#(late.id)</td>"#),
            "its request in the events, from the long poll")
    #expect(live.updates >= 2, "drawn on load and again after the event")
}

/// Waits (at most 30 s: Chromium may start slowly on a busy machine) until a long poll of the
/// event log is, or is no longer, waiting.
private func waitForLongPolls(of broker: Broker, toBe waiting: Bool, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let deadline = ContinuousClock.now + .seconds(30)
    while await broker.eventWaiters.isEmpty == waiting {
        guard ContinuousClock.now < deadline else {
            Issue.record("a long poll \(waiting ? "is still not" : "is still") waiting after 30 s", sourceLocation: sourceLocation)
            return
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Runs `broker` (its tick and its history's sampling) and serves its API and status page on a
/// free port for the duration of `body`.
private func withStatusServer(_ broker: Broker, _ body: @Sendable (Int) async throws -> Void) async throws {
    try await servingAPI(broker, token: "t", alongside: [broker], body)
}

/// A PNG's dimensions, from its IHDR chunk.
private struct PNGSize: Equatable {
    var width: Int
    var height: Int

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    init?(_ data: Data) {
        let bytes = [UInt8](data.prefix(24))
        guard bytes.count == 24, bytes[12..<16].elementsEqual("IHDR".utf8) else { return nil }
        let number = { (offset: Int) in bytes[offset..<offset + 4].reduce(0) { $0 << 8 | Int($1) } }
        width = number(16)
        height = number(20)
    }
}

/// What the tests read from the page's DOM: the `data-` attributes its tables and chart carry.
private struct StatusDOM {
    struct Area: Equatable {
        var points: Int
        var last: Int
    }

    struct Chart {
        var samples: Int
        var areas: [String: Area]
    }

    /// The document without its script, whose templates would match too.
    let html: String

    init(_ dom: String) {
        html = dom.replacing(try! Regex(#"(?s)<script>.*?</script>"#), with: "")
    }

    func contains(_ text: String) -> Bool { html.contains(text) }

    /// `data-updates` on the body: how many times the page has drawn its data.
    var updates: Int { Int(first(#"<body data-updates="(\d+)""#) ?? "") ?? 0 }

    /// The values of `attribute` on table rows (`<tr data-host="c1">`), in order.
    func rows(_ attribute: String) -> [String] {
        all(#"<tr \#(attribute)="([^"]*)""#)
    }

    var chart: Chart? {
        guard let samples = first(#"<svg id="history-chart"[^>]*data-samples="(\d+)""#).flatMap({ Int($0) }) else { return nil }
        var areas: [String: Area] = [:]
        let pattern = #"<path class="area" data-service="([^"]*)" data-points="(\d+)" data-last="(\d+)""#
        for match in html.matches(of: try! Regex(pattern)) {
            let captures = match.output.map { $0.substring.map(String.init) ?? "" }
            areas[captures[1]] = Area(points: Int(captures[2]) ?? 0, last: Int(captures[3]) ?? 0)
        }
        return Chart(samples: samples, areas: areas)
    }

    private func first(_ pattern: String) -> String? {
        all(pattern).first
    }

    private func all(_ pattern: String) -> [String] {
        html.matches(of: try! Regex(pattern)).compactMap { $0.output[1].substring.map(String.init) }
    }
}

