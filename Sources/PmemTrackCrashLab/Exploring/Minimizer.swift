/// Delta debugging (Zeller and Hildebrandt, "Simplifying and Isolating
/// Failure-Inducing Input", TSE 2002): a 1-minimal subset of `items` for
/// which `fails` holds, given that it holds for `items`. Removing any single
/// element of the result makes the failure go away.
///
/// Cost: O(|result| · log |items|) tests when the failure needs few
/// elements; O(|items|²) at worst.
func minimalFailingSubset(_ items: [Int], fails: ([Int]) -> Bool) -> [Int] {
    if items.isEmpty || fails([]) { return [] }
    var current = items
    var granularity = 2
    while current.count >= 2 {
        let chunks = split(current, into: granularity)
        var reduced = false
        for chunk in chunks where fails(chunk) {
            current = chunk
            granularity = 2
            reduced = true
            break
        }
        if !reduced {
            for chunk in chunks {
                let complement = current.filter { !chunk.contains($0) }
                if fails(complement) {
                    current = complement
                    granularity = max(granularity - 1, 2)
                    reduced = true
                    break
                }
            }
        }
        if !reduced {
            if granularity >= current.count { break }
            granularity = min(current.count, granularity * 2)
        }
    }
    return current
}

private func split(_ items: [Int], into parts: Int) -> [[Int]] {
    var result: [[Int]] = []
    var start = 0
    for part in 0..<parts {
        let end = items.count * (part + 1) / parts
        if end > start { result.append(Array(items[start..<end])) }
        start = end
    }
    return result
}
