-- Hear an organisation's turns (session-level: on a transaction-mode pooler it hears nothing, and waiters find
-- their turn on their periodic wake-up instead).
LISTEN {channel};
