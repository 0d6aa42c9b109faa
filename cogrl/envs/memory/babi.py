"""bAbI-style stories told by a small simulated world, for ``cogrl/StoryQA-v0``.

Weston, Bordes, Chopra, Rush, van Merriënboer, Joulin and Mikolov (2015), "Towards
AI-Complete Question Answering: A Set of Prerequisite Toy Tasks", generated their tasks by
simulating a world and describing what happens in it. Their Lua generator
(facebookarchive/bAbI-tasks) has no Python port; this module is our own world, written from
the paper's task descriptions and that generator's story schedules, for the tasks whose
world is people moving between places and handling objects:

- 1, single supporting fact: "Where is Mary?" -> a place (Mary's last move).
- 2, two supporting facts: "Where is the football?" -> a place (who took or put it down,
  and where they had gone; or who carries it, and where they went).
- 3, three supporting facts: "Where was the football before the kitchen?" -> a place (the
  three sentences that put it in its last two places: questions needing more are not asked).
- 6, yes/no questions: "Is Daniel in the bathroom?" -> yes or no (Daniel's last move).
- 7, counting: "How many objects is Mary carrying?" -> none, one, two or three (every
  pick-up and drop of Mary's so far).

The world: four people (Mary, John, Sandra, Daniel), six places, three objects (football,
apple, milk). Every person and object starts at a random place that the story does not
tell. A sentence is one action, valid in the true world: a move to another place
("went to", "journeyed to", "travelled to", "moved to", "went back to"), picking up an
object that lies where the person is ("picked up", "got ... there", "grabbed ... there",
"took"), or putting down one the person holds ("dropped", "discarded", "put down", "left").

Questions are asked only about what a reader of the story so far can know, and their
answers are the true world's: a person's place is known once the story has moved them; an
object's place once it is picked up or put down by someone whose place is known, or carried
by someone who then moves (after which it stays known: every later change of its place is
a move told by the story). Task 3 asks about an object's last two known places only where
its current place occurs once in its history, so "before the kitchen" names one moment.

Schedules, as in the Lua generator: tasks 1 and 6 tell 2 moves and then ask, 5 times
(15 lines); tasks 2 and 3 ask 5 questions, each after at least 3 new sentences and a coin
flip, about a known object (a story ends after 150 sentences, with fewer questions if
need be); task 7 asks first once someone has handled an object, then every 2 sentences,
5 questions in all.

Sets: ``generate(task, split, training_questions)``. Like bAbI, sizes count *questions*
(bAbI's "1k" is 1,000 questions per task, each an example over its story so far). The
test set is the first 1,000 questions of the test stream; the training sets (1,000 or
10,000 questions) come from a separate stream that skips every story holding a (story so
far, question) pair of the test set, so no test example is ever trained on. The 1k
training set is the first 1,000 questions of the 10k one. Streams are seeded by task and
split through ``random.Random``'s ``random()`` alone, whose sequence Python keeps the
same across versions, so the sets do not change between installations.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterator, Sequence

from cogrl.checks import check_int
from cogrl.datasets import SPLITS, BabiData, BabiLine, babi_data, babi_words

__all__ = [
    "GENERATED_TASKS",
    "TRAINING_QUESTIONS",
    "TEST_QUESTIONS",
    "VOCABULARY",
    "generate",
    "generate_stories",
    "babi_text",
]

GENERATED_TASKS = (1, 2, 3, 6, 7)
TRAINING_QUESTIONS = (1000, 10000)
TEST_QUESTIONS = 1000
QUESTIONS_PER_STORY = 5
# Tasks 2 and 3 end a story here even if it has fewer questions (task 3's questions need an
# object whose current place is new to it, which grows rare as stories go on).
MAX_SENTENCES = 150

PEOPLE = ("Mary", "John", "Sandra", "Daniel")
PLACES = ("bathroom", "hallway", "garden", "office", "bedroom", "kitchen")
OBJECTS = ("football", "apple", "milk")
MOVES = (
    "{} went to the {}.",
    "{} journeyed to the {}.",
    "{} travelled to the {}.",
    "{} moved to the {}.",
    "{} went back to the {}.",
)
GETS = (
    "{} picked up the {}.",
    "{} got the {} there.",
    "{} grabbed the {} there.",
    "{} took the {}.",
)
DROPS = ("{} dropped the {}.", "{} discarded the {}.", "{} put down the {}.", "{} left the {}.")
COUNTS = ("none", "one", "two", "three")  # how many of the three objects a person carries
QUESTIONS = {
    1: "Where is {}?",
    2: "Where is the {}?",
    3: "Where was the {} before the {}?",
    6: "Is {} in the {}?",
    7: "How many objects is {} carrying?",
}


def _vocabulary() -> tuple[str, ...]:
    """Every word any generated story, question or answer holds, sorted, after the padding
    entry 0: one vocabulary for all generated tasks and splits."""
    words: set[str] = set()
    for template in (*MOVES, *GETS, *DROPS, *QUESTIONS.values()):
        words.update(babi_words(template.replace("{}", " ")))
    for word in (*PEOPLE, *PLACES, *OBJECTS, *COUNTS, "yes", "no"):
        words.update(babi_words(word))
    return ("<pad>", *sorted(words))


VOCABULARY = _vocabulary()


class _Draw:
    """Random choices from ``random.Random(seed).random()`` only (see the module docstring)."""

    def __init__(self, seed: str) -> None:
        self._random = random.Random(seed).random

    def index(self, n: int) -> int:
        return int(self._random() * n)

    def choice(self, options: Sequence):
        return options[self.index(len(options))]

    def coin(self) -> bool:
        return self._random() < 0.5


class _World:
    """The true state of the world, the story told so far, and what a reader of it knows."""

    def __init__(self, draw: _Draw) -> None:
        self.draw = draw
        self.place = {p: draw.choice(PLACES) for p in PEOPLE}
        self.floor = {o: draw.choice(PLACES) for o in OBJECTS}  # objects nobody holds
        self.holder: dict[str, str | None] = {o: None for o in OBJECTS}
        self.lines: list[BabiLine] = []
        self.n_sentences = 0
        # The reader's knowledge, with the sentence positions it follows from.
        self.last_move: dict[str, int] = {}  # person -> the move that put them where they are
        self.got: dict[str, int] = {}  # held object -> the sentence where its holder took it
        self.handled: dict[str, list[int]] = {p: [] for p in PEOPLE}  # person -> get/drop lines
        self.known: dict[str, tuple[str, tuple[int, ...]]] = {}  # object -> (place, support)
        self.history: dict[str, list[tuple[str, tuple[int, ...]]]] = {o: [] for o in OBJECTS}

    # --- telling -------------------------------------------------------------------------
    def _tell(self, templates: Sequence[str], *names: str) -> int:
        self.lines.append(self.draw.choice(templates).format(*names))
        self.n_sentences += 1
        return self.n_sentences - 1

    def ask(self, question: str, answer: str, support: Sequence[int]) -> None:
        self.lines.append((question, answer, tuple(sorted(set(support)))))

    def _learn(self, obj: str, place: str, support: tuple[int, ...]) -> None:
        """The reader now knows ``obj`` is at ``place`` from ``support``."""
        self.known[obj] = (place, support)
        history = self.history[obj]
        if history and history[-1][0] == place:
            history[-1] = (place, support)  # the same place, from the latest sentences
        else:
            history.append((place, support))

    # --- actions -------------------------------------------------------------------------
    def move(self) -> None:
        person = self.draw.choice(PEOPLE)
        place = self.draw.choice([x for x in PLACES if x != self.place[person]])
        at = self._tell(MOVES, person, place)
        self.place[person] = place
        self.last_move[person] = at
        for obj in OBJECTS:
            if self.holder[obj] == person:  # it goes where its holder goes
                self._learn(obj, place, (self.got[obj], at))

    def handle(self) -> bool:
        """Pick up or put down an object, chosen among the valid ones; False if none is."""
        valid = [
            (p, o)
            for p in PEOPLE
            for o in OBJECTS
            if self.holder[o] == p or (self.holder[o] is None and self.floor[o] == self.place[p])
        ]
        if not valid:
            return False
        person, obj = self.draw.choice(valid)
        if self.holder[obj] == person:
            at = self._tell(DROPS, person, obj)
            self.holder[obj] = None
            self.floor[obj] = self.place[person]
        else:
            at = self._tell(GETS, person, obj)
            self.holder[obj] = person
            self.got[obj] = at
        self.handled[person].append(at)
        if person in self.last_move:
            # Where the person is, the object is: their last move and this sentence.
            self._learn(obj, self.place[person], (self.last_move[person], at))
        # Otherwise an object whose place was known stays known (the person is where it
        # is), and one whose place was unknown stays unknown.
        return True

    def act(self, move_only: bool = False) -> None:
        """One sentence: a move or, as often, a pick-up or drop where one is valid (the Lua
        generator handles objects 2 times in 3, which fills stories with objects picked up
        and put down again on the spot)."""
        if move_only or self.draw.coin() or not self.handle():
            self.move()


def _where_is_actor(draw: _Draw, yes_no: bool) -> list[BabiLine]:
    """Tasks 1 and 6: 2 moves, then a question about someone whose place is known; 5 times."""
    world = _World(draw)
    for _ in range(QUESTIONS_PER_STORY):
        world.act(move_only=True)
        world.act(move_only=True)
        person = draw.choice(sorted(world.last_move))
        support = (world.last_move[person],)
        if not yes_no:
            world.ask(QUESTIONS[1].format(person), world.place[person], support)
            continue
        place = world.place[person]
        if draw.coin():
            world.ask(QUESTIONS[6].format(person, place), "yes", support)
        else:
            other = draw.choice([x for x in PLACES if x != place])
            world.ask(QUESTIONS[6].format(person, other), "no", support)
    return world.lines


def _where_object(draw: _Draw, before: bool) -> list[BabiLine]:
    """Tasks 2 and 3: questions about known objects, each after 3 or more new sentences."""
    world = _World(draw)
    asked, since = 0, 0
    while asked < QUESTIONS_PER_STORY and world.n_sentences < MAX_SENTENCES:
        world.act()
        since += 1
        if since < 3 or not draw.coin():
            continue
        if before:
            # Objects with two known places, whose current one occurs once in their history,
            # that three sentences put there (a holder that the story never moved can make
            # it four: such questions are not asked).
            askable = [
                o
                for o in OBJECTS
                if len(h := world.history[o]) >= 2
                and all(p != h[-1][0] for p, _ in h[:-1])
                and len(set(h[-2][1] + h[-1][1])) == 3
            ]
        else:
            askable = [o for o in OBJECTS if o in world.known]
        if not askable:
            continue
        obj = draw.choice(askable)
        if before:
            (previous, first), (current, second) = world.history[obj][-2:]
            world.ask(QUESTIONS[3].format(obj, current), previous, first + second)
        else:
            place, support = world.known[obj]
            world.ask(QUESTIONS[2].format(obj), place, support)
        asked, since = asked + 1, 0
    return world.lines


def _counting(draw: _Draw) -> list[BabiLine]:
    """Task 7: once someone has handled an object, ask how many objects a person who has
    handled one carries, then again every 2 sentences: 5 questions."""
    world = _World(draw)
    first = None
    while first is None or world.n_sentences - first < 2 * (QUESTIONS_PER_STORY - 1):
        world.act()
        i = world.n_sentences
        handlers = [p for p in PEOPLE if world.handled[p]]
        if (first is None and i > 1 and handlers) or (first is not None and (i - first) % 2 == 0):
            first = i if first is None else first
            person = draw.choice(handlers)
            count = sum(world.holder[o] == person for o in OBJECTS)
            world.ask(QUESTIONS[7].format(person), COUNTS[count], world.handled[person])
    return world.lines


def _story(task: int, draw: _Draw) -> list[BabiLine]:
    if task in (1, 6):
        return _where_is_actor(draw, yes_no=task == 6)
    if task in (2, 3):
        return _where_object(draw, before=task == 3)
    return _counting(draw)


def _stream(task: int, split: str) -> Iterator[list[BabiLine]]:
    """The endless stream of stories of one task and split."""
    draw = _Draw(f"cogrl-babi-task{task}-{split}")
    while True:
        yield _story(task, draw)


def _keys(story: Sequence[BabiLine]) -> Iterator[tuple]:
    """Each question of ``story`` as (sentences before it, question): what makes an example."""
    sentences: list[str] = []
    for line in story:
        if isinstance(line, str):
            sentences.append(line)
        else:
            yield tuple(sentences), line[0]


def _take(stories: Iterator[list[BabiLine]], n: int, exclude: frozenset = frozenset()) -> list:
    """Stories holding ``n`` questions in all: whole stories, the last cut after its
    ``n``-th question; stories holding an example of ``exclude`` are skipped."""
    taken: list[list[BabiLine]] = []
    left = n
    for story in stories:
        if exclude and any(key in exclude for key in _keys(story)):
            continue
        questions = [i for i, line in enumerate(story) if not isinstance(line, str)]
        if len(questions) >= left:
            taken.append(story[: questions[left - 1] + 1])
            return taken
        taken.append(story)
        left -= len(questions)
    raise AssertionError("unreachable: the stream of stories is endless")


def _check(task: int, split: str, training_questions: int) -> None:
    check_int("task", task)
    if task not in GENERATED_TASKS:
        raise ValueError(
            f"task must be one of the generated tasks {GENERATED_TASKS} (any bAbI task 1 to 20 "
            f"from files, with root=), got {task!r}"
        )
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    check_int("training_questions", training_questions)
    if training_questions not in TRAINING_QUESTIONS:
        raise ValueError(
            f"training_questions must be one of {TRAINING_QUESTIONS} (bAbI's 1k and 10k), "
            f"got {training_questions!r}"
        )


@functools.cache
def _test_keys(task: int) -> frozenset:
    return frozenset(k for story in generate_stories(task, "test") for k in _keys(story))


@functools.cache
def _generate_stories(task: int, split: str, training_questions: int) -> tuple:
    if split == "test":
        stories = _take(_stream(task, "test"), TEST_QUESTIONS)
    else:
        stories = _take(_stream(task, "train"), training_questions, _test_keys(task))
    return tuple(tuple(story) for story in stories)


def generate_stories(
    task: int, split: str = "train", training_questions: int = 1000
) -> tuple[tuple[BabiLine, ...], ...]:
    """The stories of a generated set as lines (sentences, and questions as
    ``(question, answer, supporting positions)``; see :data:`cogrl.datasets.BabiLine`).

    ``training_questions`` (1000 or 10000) sizes the training set; the test set is the same
    1,000 questions whatever it is. Cached in-process.
    """
    _check(task, split, training_questions)
    return _generate_stories(int(task), split, _size_key(split, training_questions))


@functools.cache
def _generate(task: int, split: str, training_questions: int) -> BabiData:
    return babi_data(task, generate_stories(task, split, training_questions))


def generate(task: int, split: str = "train", training_questions: int = 1000) -> BabiData:
    """A generated set as :class:`~cogrl.datasets.BabiData` (see the module docstring):
    ``training_questions`` questions for ``split="train"``, 1,000 for ``"test"``. Cached."""
    _check(task, split, training_questions)
    return _generate(int(task), split, _size_key(split, training_questions))


def _size_key(split: str, training_questions: int) -> int:
    """The cache key of a set's size: one test set, whatever the training size."""
    return int(training_questions) if split == "train" else TEST_QUESTIONS


def babi_text(stories: Sequence[Sequence[BabiLine]]) -> str:
    """Stories in bAbI's file format: numbered lines, starting at 1 in each story, and
    ``ID question?<TAB>answer<TAB>supporting IDs`` for questions (which
    :func:`cogrl.datasets.load_babi` reads back)."""
    out: list[str] = []
    for story in stories:
        ids: list[int] = []  # line ID of each sentence
        for number, line in enumerate(story, 1):
            if isinstance(line, str):
                ids.append(number)
                out.append(f"{number} {line}")
            else:
                question, answer, support = line
                out.append(
                    f"{number} {question} \t{answer}\t{' '.join(str(ids[i]) for i in support)}"
                )
    return "\n".join(out) + "\n"
