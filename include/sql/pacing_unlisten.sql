-- Done waiting: stop hearing the organisation's turns. (Every NOTIFY wakes each listening session of the database
-- for a moment, so only waiting workers listen.)
UNLISTEN {channel};
