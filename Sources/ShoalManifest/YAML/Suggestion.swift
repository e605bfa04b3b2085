/// "Did you mean …?" for misspelt keys, by edit distance.
enum Suggestion {
    /// The candidate closest to `word`, if it is close enough to be a likely typo:
    /// at most a third of the word's length in edits (at least 1, at most 3), ignoring case.
    static func closest(to word: String, among candidates: [String]) -> String? {
        let limit = max(1, min(3, word.count / 3))
        let lowered = word.lowercased()
        let length = lowered.count
        var best: (candidate: String, distance: Int)?
        // The distance is at least the difference in length: skipping those keeps a huge key
        // (an explicit `? key` may be near the file size limit) from costing seconds.
        for candidate in candidates {
            let other = candidate.lowercased()
            guard abs(other.count - length) <= limit else { continue }
            let distance = editDistance(lowered, other)
            if distance <= limit, distance < best?.distance ?? .max {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    /// two adjacent characters each cost 1 (so "cnocurrency" is one edit from "concurrency").
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
