using System.Text.RegularExpressions;

namespace ActorQueue.Tests.Hosting;

/// <summary>
/// Every C# block of README.md is a snippet of examples/ActorQueue.Examples, which CI builds: the block follows a
/// <c>&lt;!-- snippet: NAME --&gt;</c> line and equals the text between the <c>// snippet: NAME</c> and
/// <c>// end snippet</c> markers of the examples (their regions joined by a blank line, indentation removed).
/// </summary>
public partial class ReadmeSnippetTests
{
    [Fact]
    public void Every_csharp_block_in_the_README_is_a_compiled_example_snippet()
    {
        var readme = File.ReadAllLines(Path.Combine(RepositoryFiles.Root, "README.md"));
        var snippets = ExampleSnippets();
        var problems = new List<string>();
        var blocks = 0;
        for (var i = 0; i < readme.Length; i++)
        {
            if (readme[i].Trim() != "```csharp")
            {
                continue;
            }

            blocks++;
            var end = Array.FindIndex(readme, i + 1, line => line.Trim() == "```");
            var block = string.Join('\n', readme[(i + 1)..end]);
            var marker = i > 0 ? SnippetMarker().Match(readme[i - 1]) : Match.Empty;
            if (!marker.Success)
            {
                problems.Add($"README.md:{i + 1}: a C# block without a '<!-- snippet: NAME -->' line before it");
            }
            else if (!snippets.TryGetValue(marker.Groups[1].Value, out var snippet))
            {
                problems.Add($"README.md:{i + 1}: no snippet '{marker.Groups[1].Value}' in examples/ActorQueue.Examples");
            }
            else if (snippet != block)
            {
                problems.Add($"README.md:{i + 1}: snippet '{marker.Groups[1].Value}' differs from the example:\n--- README\n{block}\n--- example\n{snippet}");
            }

            i = end;
        }

        Assert.True(blocks >= 7, $"found only {blocks} C# blocks");
        Assert.True(problems.Count == 0, string.Join("\n\n", problems));
    }

    [Fact]
    public void The_README_links_only_to_files_inside_the_repository()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryFiles.Root, "README.md"));
        var missing = LocalLink().Matches(readme)
            .Select(match => match.Groups[1].Value.Split('#')[0])
            .Where(target => target.Length > 0 && !File.Exists(Path.Combine(RepositoryFiles.Root, target)) && !Directory.Exists(Path.Combine(RepositoryFiles.Root, target)))
            .ToList();

        Assert.Empty(missing);
        Assert.DoesNotContain("../", readme, StringComparison.Ordinal);
    }

    /// <summary>
    /// PutAsync returns <c>false</c> when the queue refuses the item (still full after its put timeout, or stopping):
    /// the hosting example, in the examples and in the README, handles that result rather than dropping the item unseen.
    /// </summary>
    [Fact]
    public void The_hosting_example_handles_a_put_that_returns_false()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryFiles.Root, "README.md")).ReplaceLineEndings("\n");
        var start = readme.IndexOf("<!-- snippet: hosting -->", StringComparison.Ordinal);
        Assert.True(start >= 0, "README.md has no hosting snippet");
        var examples = new Dictionary<string, string>
        {
            ["README.md (hosting)"] = readme[start..readme.IndexOf("\n```\n", start, StringComparison.Ordinal)],
            ["examples/ActorQueue.Examples/Program.cs"] = File.ReadAllText(Path.Combine(RepositoryFiles.Root, "examples", "ActorQueue.Examples", "Program.cs")),
        };

        foreach (var (name, text) in examples)
        {
            Assert.True(text.Contains(".PutAsync(", StringComparison.Ordinal), $"{name} puts nothing");
            var discarded = DiscardedPut().Match(text);
            Assert.False(discarded.Success, $"{name} ignores what PutAsync returns: {discarded.Value.Trim()}");
        }
    }

    /// <summary>The snippets of the examples project by name: each region dedented, regions of one name joined by a blank line.</summary>
    private static Dictionary<string, string> ExampleSnippets()
    {
        var regions = new Dictionary<string, List<string>>();
        foreach (var file in Directory.EnumerateFiles(Path.Combine(RepositoryFiles.Root, "examples", "ActorQueue.Examples"), "*.cs"))
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                var start = CodeMarker().Match(lines[i]);
                if (!start.Success)
                {
                    continue;
                }

                var end = Array.FindIndex(lines, i + 1, line => line.Trim() == "// end snippet");
                Assert.True(end > i, $"{file}:{i + 1}: snippet without '// end snippet'");
                var region = lines[(i + 1)..end];
                var indent = region.Where(line => line.Trim().Length > 0).Select(line => line.Length - line.TrimStart().Length).DefaultIfEmpty(0).Min();
                var text = string.Join('\n', region.Select(line => line.Length >= indent ? line[indent..] : line.TrimStart()));
                if (!regions.TryGetValue(start.Groups[1].Value, out var list))
                {
                    regions[start.Groups[1].Value] = list = [];
                }

                list.Add(text);
                i = end;
            }
        }

        return regions.ToDictionary(pair => pair.Key, pair => string.Join("\n\n", pair.Value));
    }

    /// <summary>A put whose result is not looked at: a statement of its own, awaited or not, or assigned to the discard.</summary>
    [GeneratedRegex(@"^[ \t]*(_\s*=\s*)?(await\s+)?[\w.]+\.PutAsync\(", RegexOptions.Multiline)]
    private static partial Regex DiscardedPut();

    [GeneratedRegex(@"^<!-- snippet: ([\w-]+) -->$")]
    private static partial Regex SnippetMarker();

    [GeneratedRegex(@"^\s*// snippet: ([\w-]+)\s*$")]
    private static partial Regex CodeMarker();

    [GeneratedRegex(@"\]\((?!https?:|#|mailto:)([^)\s]+)\)")]
    private static partial Regex LocalLink();
}
