/// The demo's load: one shape per service, peaking at different times, so that back-ends go from
/// one service to another — by fair share, by Master2's priority, and by being given back when a
/// load falls — while the others' loads still run.
struct LoadShape {
    var service: String
    /// What each request asks for (`shoal-webserver`'s query: delay, CPU, size).
    var path: String
    var peak: Int
    /// Seconds of a 60 s run: the load rises from 0 over `rise` and falls back to 0 over `fall`.
    var rise: ClosedRange<Double>
    var fall: ClosedRange<Double>

    /// Connections at second `t` of a run that lasts `scale` × 60 s.
    func connections(at t: Double, scale: Double) -> Int {
        let (rise, fall) = ((rise.lowerBound * scale)...(rise.upperBound * scale), (fall.lowerBound * scale)...(fall.upperBound * scale))
        let level: Double
        switch t {
        case ..<rise.lowerBound, fall.upperBound...: level = 0
        case ..<rise.upperBound: level = (t - rise.lowerBound) / (rise.upperBound - rise.lowerBound)
        case ..<fall.lowerBound: level = 1
        default: level = (fall.upperBound - t) / (fall.upperBound - fall.lowerBound)
        }
        return level > 0 ? max(1, Int((Double(peak) * level).rounded())) : 0
    }

    /// When this load has fallen to nothing, in seconds of the run.
    func end(scale: Double) -> Double { fall.upperBound * scale }

    /// A: first, three back-ends. B: while A falls, its back-ends free up. Master2 (priority 10): a
    /// burst that takes what is free. C: rises into a full pool and gets its fair share, then
    /// Master2's back-ends once that burst is over. The last 14 s are quiet: everything goes back.
    /// Master2 comes first: it always holds one back-end, the bottom band of the timeline.
    static func plan(peak: Int) -> [LoadShape] {
        [
            LoadShape(service: "master2", path: "/doc?delay_ms=20", peak: peak, rise: 22...24, fall: 34...36),
            LoadShape(service: "a", path: "/doc?delay_ms=20", peak: peak, rise: 0...6, fall: 16...20),
            LoadShape(service: "b", path: "/doc?delay_ms=20", peak: max(1, peak / 2), rise: 10...16, fall: 26...30),
            LoadShape(service: "c", path: "/doc?cpu_ms=1&delay_ms=20", peak: max(1, peak / 4), rise: 26...32, fall: 42...46),
        ]
    }
}
