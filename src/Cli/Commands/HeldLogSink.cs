using Serilog.Core;
using Serilog.Events;

namespace ActorQueue.Cli.Commands;

/// <summary>
/// <c>--log</c>'s events of a run with <c>--state</c>, held until the run is accepted (its state belongs to its input
/// and its queue opened: <see cref="Release"/>), then written in order and every later one as it comes. A run refused
/// before (<see cref="Discard"/>) writes none: an existing log got the queue's "started/stopping/stopped" events of a
/// run that never ran (h232's review). A run that ends neither way (a stop before it was accepted) writes them at the end.
/// </summary>
internal sealed class HeldLogSink(ILogEventSink inner) : ILogEventSink, IAsyncDisposable, IDisposable
{
    private readonly Lock _gate = new();

    /// <summary>The events held; <c>null</c> once released or discarded.</summary>
    private List<LogEvent>? _held = [];

    /// <summary>Set by <see cref="Discard"/>: every event is dropped (the run was refused; none is its record).</summary>
    private bool _discarded;

    public void Emit(LogEvent logEvent)
    {
        lock (_gate)
        {
            if (_discarded)
            {
                return;
            }

            if (_held is not null)
            {
                _held.Add(logEvent);
                return;
            }
        }

        inner.Emit(logEvent);
    }

    /// <summary>The run is accepted: the events held are written, and every later one as it comes.</summary>
    public void Release()
    {
        List<LogEvent>? held;
        lock (_gate)
        {
            // Written under the gate, so a later event never overtakes a held one.
            (held, _held) = (_held, null);
            foreach (var logEvent in held ?? [])
            {
                inner.Emit(logEvent);
            }
        }
    }

    /// <summary>The run was refused before it started: no event of it is written.</summary>
    public void Discard()
    {
        lock (_gate)
        {
            _discarded = true;
            _held = null;
        }
    }

    public void Dispose()
    {
        Release();
        (inner as IDisposable)?.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        Release();
        if (inner is IAsyncDisposable asynchronous)
        {
            await asynchronous.DisposeAsync();
        }
        else
        {
            (inner as IDisposable)?.Dispose();
        }
    }
}
