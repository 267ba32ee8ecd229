namespace ActorQueue.Cli.Commands;

/// <summary>
/// Console output for the demo: event lines scroll, and on a terminal one status line stays at the bottom and is
/// rewritten in place; when output is redirected the status is printed as a plain line whenever it changes.
/// </summary>
internal sealed class DemoConsole(TextWriter output)
{
    private readonly Lock _gate = new();
    private readonly bool _isTerminal = ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;
    private string _status = "";

    public void Line(string text)
    {
        lock (_gate)
        {
            if (_isTerminal && _status.Length > 0)
            {
                output.Write("\r\u001b[2K");
                output.WriteLine(text);
                output.Write(_status);
            }
            else
            {
                output.WriteLine(text);
            }
        }
    }

    public void Status(string text)
    {
        lock (_gate)
        {
            var changed = !string.Equals(Strip(text), Strip(_status), StringComparison.Ordinal);
            _status = text;
            if (_isTerminal)
            {
                output.Write("\r\u001b[2K" + text);
            }
            else if (changed)
            {
                output.WriteLine(text);
            }
        }
    }

    /// <summary>The status without its timestamp, to tell whether anything but the time changed.</summary>
    private static string Strip(string status) => status.Length > 9 ? status[9..] : status;
}
