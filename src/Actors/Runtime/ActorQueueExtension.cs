using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace ActorQueue.Runtime;

/// <summary>
/// ActorQueue's per-system state: its settings, unique actor names, and the responder that fails requests
/// whose actor is gone.
/// </summary>
internal sealed class ActorQueueExtension : IExtension
{
    /// <summary>Numbers the actors ActorQueue creates so that two facades never ask for the same name.</summary>
    private long _nextActorNumber;

    /// <summary>Primitive coordinators alive in this system (started and not yet stopped).</summary>
    private int _liveCoordinators;

    /// <summary>Primitive coordinators ever started in this system.</summary>
    private long _startedCoordinators;

    /// <summary>Where facades without a logger of their own log; <c>null</c> for Serilog's static logger.</summary>
    private ILoggerFactory? _loggerFactory;

    public ActorQueueExtension(ExtendedActorSystem system)
    {
        System = system;
        // Our defaults go under the system's own configuration, so a caller's system keeps its settings and
        // still finds our dispatchers and queue defaults.
        system.Settings.InjectTopLevelFallback(ActorQueueRuntime.DefaultConfig);
        Settings = ActorQueueSettings.From(system.Settings.Config);
        UndeliveredRequestResponder.Start(system);
    }

    /// <summary>The actor system this extension belongs to.</summary>
    public ExtendedActorSystem System { get; }

    /// <summary>The typed <c>actorqueue</c> configuration.</summary>
    public ActorQueueSettings Settings { get; }

    /// <summary>The logger factory attached by <see cref="ActorQueueRuntime.UseLoggerFactory"/>; <c>null</c> for Serilog's static logger.</summary>
    public ILoggerFactory? LoggerFactory
    {
        get => Volatile.Read(ref _loggerFactory);
        set => Volatile.Write(ref _loggerFactory, value);
    }

    /// <summary>Primitive coordinators alive in this system; a dropped primitive's coordinator leaves this count.</summary>
    public int LiveCoordinators => Volatile.Read(ref _liveCoordinators);

    /// <summary>Primitive coordinators ever started in this system.</summary>
    public long StartedCoordinators => Interlocked.Read(ref _startedCoordinators);

    /// <summary>Called by a coordinator when it starts (+1) and stops (-1).</summary>
    public void CountCoordinator(int delta)
    {
        Interlocked.Add(ref _liveCoordinators, delta);
        if (delta > 0)
        {
            Interlocked.Add(ref _startedCoordinators, delta);
        }
    }

    /// <summary>Loads (once) and returns the extension for <paramref name="system"/>.</summary>
    public static ActorQueueExtension Get(ActorSystem system) => system.WithExtension<ActorQueueExtension, ActorQueueExtensionId>();

    /// <summary>A name for a new actor: <paramref name="kind"/>, a number unique in this system, and the label when it is a valid path element.</summary>
    public string UniqueActorName(string kind, string? label)
    {
        var number = Interlocked.Increment(ref _nextActorNumber);
        return label is not null && ActorPath.IsValidPathElement(label)
            ? $"{kind}-{number}-{label}"
            : $"{kind}-{number}";
    }
}

/// <summary>Creates <see cref="ActorQueueExtension"/> for Akka's extension registry.</summary>
internal sealed class ActorQueueExtensionId : ExtensionIdProvider<ActorQueueExtension>
{
    /// <inheritdoc />
    public override ActorQueueExtension CreateExtension(ExtendedActorSystem system) => new(system);
}
