"""Story question answering: the bAbI tasks as an episodic memory task (``cogrl/StoryQA-v0``).

## Description

Weston, Bordes, Chopra, Rush, van Merriënboer, Joulin and Mikolov (2015), "Towards
AI-Complete Question Answering: A Set of Prerequisite Toy Tasks": a short story about people
moving between places and handling objects, then a question about it ("Where is the
football?"), answered with one word. End-to-end memory networks (Sukhbaatar et al. 2015)
read the story into memory and attend to it to answer; here the story comes one sentence
per step, so an agent must keep what it needs until the question comes.

Each episode is one question of the data set over its story so far: the sentences of its
story before the question, in order (earlier questions of the story are not shown), then
the question. Stories come from our own simulated world (:mod:`cogrl.envs.memory.babi`,
tasks 1, 2, 3, 6, 7) or from bAbI's own text files (``root=``, any task 1 to 20).

## Action Space

``Discrete(vocab_size)``: a word id of the vocabulary ``core.vocab`` (through ``gym.make``:
``env.unwrapped.vocab``). Answers are single vocabulary entries: a place, ``yes``/``no``,
a count word (``none``, ``one``, ``two``, ...); bAbI's list answers (tasks 8 and 19, e.g.
``apple,football``, ``n,w``) are one entry each. The action is read at the question step
only; actions at story steps are ignored. Actions outside the space raise ``ValueError``
(:func:`cogrl.spaces.check_actions`).

## Observation Space

``Dict`` of:

- ``words``: ``MultiDiscrete(np.full(max_words, vocab_size))``, the sentence's (or the
  question's) word ids in order, padded with 0 at the end.
- ``question``: ``Box(0, 1, (1,), float32)``, 1.0 at the question step, else 0.0.

Words are lower-cased with punctuation dropped; id 0 is ``"<pad>"``.
``core.decode(words)`` turns a row of ids back into the sentence's words.

## Rewards

1 for the right word at the question step, 0 otherwise (and 0 at every story step).

## Starting State

A question drawn uniformly from the split; the first observation is its story's first
sentence shown (or the question itself if no sentence precedes it).

## Episode End

The episode terminates at the question step: a story of L shown sentences takes L + 1
steps. ``max_episode_steps`` is the longest story shown + 1. At that step ``info`` holds
``correct`` (bool), ``answer`` (the right word id) and ``prediction`` (the word
answered), masked by ``_correct``, ``_answer`` and ``_prediction``. The core declares
``metadata["episode_metrics"] = {"accuracy": "correct"}``, ``metadata["label_key"] =
"answer"`` and ``metadata["splits"] = ("train", "test")``.

``answer`` is also the right action, for learners that supervise answers
(``metadata["answer_key"] = "answer"``): an int64 (num_envs,) ``Discrete(vocab_size)``
action, the word that earns the reward 1, due where ``_answer`` is true, at the question
step only (at story steps it holds the question's answer too, but no answer is due). At
the question step (the episode's last) it is the finished episode's answer, not the next
episode's. At every step ``info["action_ignored"]`` (bool (num_envs,), no mask;
``metadata["ignored_key"] = "action_ignored"``) is true at the story steps, whose action
changes nothing (not the observations, the rewards nor the episode's end), and false at
the question step.

## Arguments

```python
gym.make("cogrl/StoryQA-v0", task=1, split="train", training_stories=1000, root=None,
         max_sentences=None, max_words=None, tasks=None, render_mode=None)
```

- ``task``: with ``root=None`` one of the generated tasks 1 (single supporting fact),
  2 (two supporting facts), 3 (three supporting facts), 6 (yes/no questions), 7
  (counting); with ``root`` any bAbI task 1 to 20.
- ``split``: ``"train"`` or ``"test"``; no (story, question) example of the test set is
  in the training set.
- ``training_stories``: 1000 or 10000, the size of the training set, bAbI's "1k" and
  "10k". Like bAbI, it counts *questions* (examples), not stories. The test set is 1,000
  questions whatever it is.
- ``root``: ``None`` for our generated stories; a folder for bAbI's text files, the
  ``tasks_1-20_v1-2`` folder (holding ``en/`` and ``en-10k/``) or one language folder
  (see :func:`cogrl.datasets.load_babi`).
- ``max_sentences``: ``None`` (default) shows the whole story before the question. An int
  shows only the most recent ``max_sentences`` sentences before it and **drops the earlier
  ones**, as end-to-end memory networks keep a memory of the last 50 sentences; answers
  whose supporting facts lie earlier can then not be known. Off by default.
- ``max_words``: the length of ``words``; ``None`` is the longest sentence or question
  of the task (train and test, so both splits have the same spaces). A value shorter than
  that is a ValueError: sentences are never cut.
- ``tasks``: ``None`` (default) holds ``task`` only. A list of tasks (including ``task``)
  holds them all, so that the task may change while the core runs, per environment, for a
  curriculum (e.g. tasks 1, 2, 3: one, two, three supporting facts):
  ``core.configure({"task": 2})`` (:meth:`cogrl.core.BatchedEnv.configure`) draws that
  environment's next questions from task 2. The spaces then fit every task held: the
  longest sentence of them all, and with ``root`` the words of them all. ``task`` is the
  one every environment starts with; ``core.data`` is its split.

The vocabulary is the same for both splits of a task: for generated stories one fixed
vocabulary for all generated tasks; for files, every word and answer of the task's train
and test files (of the chosen training size), sorted. A policy's word ids are those of its
training vocabulary: evaluating it on other files (``cogrl eval RUN --set env.root=OTHER``)
whose vocabulary has another size is a ValueError naming both observation spaces; files
with as many words but other ones cannot be told apart by the spaces, so evaluate on the
folder the run trained on (or one with the same words).

## Version History

- v0: initial version.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from cogrl.checks import check_int
from cogrl.core import BatchedEnv, Info
from cogrl.datasets import BABI_TASKS, SPLITS, BabiData, load_babi
from cogrl.envs.memory import babi

PAD = "<pad>"
TRAINING_STORIES = {1000: "1k", 10000: "10k"}  # training_stories -> bAbI's folder size

# Rendering: the last few sentences shown, as text on a fixed-size frame.
_RENDER_LINES = 13
_LINE_HEIGHT = 16
_FRAME_WIDTH = 480


def _story_data(task: int, split: str, training_stories: int, root: str | None) -> BabiData:
    if root is None:
        return babi.generate(task, split, training_stories)
    return load_babi(root, task, split, TRAINING_STORIES[training_stories])


def _check_tasks(tasks: Any, task: int, known: Sequence[int]) -> tuple[int, ...]:
    """``tasks`` (the tasks a core holds, to switch among while running) as a tuple of
    distinct ints among ``known`` that includes ``task``; None is ``(task,)``."""
    if tasks is None:
        return (task,)
    expected = f"None or a list of distinct tasks among {list(known)} that includes task={task}"
    ok = isinstance(tasks, (list, tuple)) and len(tasks) > 0
    ok = ok and all(not isinstance(k, bool) and isinstance(k, (int, np.integer)) for k in tasks)
    ok = ok and len(set(tasks)) == len(tasks) and all(k in known for k in tasks)
    if not ok or task not in tasks:
        raise ValueError(f"tasks must be {expected}, got {tasks!r}")
    return tuple(int(k) for k in tasks)


def _encode(rows: Sequence[Sequence[str]], index: dict[str, int], width: int) -> np.ndarray:
    """Rows of words as ids (len(rows), width) int64, padded with 0 at the end."""
    lengths = np.fromiter(map(len, rows), np.int64, len(rows))
    ids = np.fromiter((index[w] for row in rows for w in row), np.int64, int(lengths.sum()))
    out = np.zeros((len(rows), width), np.int64)
    out[np.arange(width) < lengths[:, None]] = ids  # row-major: each row's words in order
    return out


class StoryQA(BatchedEnv):
    """Batched core of bAbI story question answering (see the module docstring).

    The whole split is encoded once at construction: every story sentence once, as ids
    (S, max_words), each question's words (Q, max_words), answer (Q,), and where its story
    lies among the sentences (start and length, after ``max_sentences``). An episode is a
    question index drawn with ``self.rng`` and a step counter ``t``: a step gathers row
    ``start + t`` of the sentences, or the question once ``t`` reaches the length.
    """

    metadata: dict[str, Any] = {
        **BatchedEnv.metadata,
        "render_fps": 2,
        "episode_metrics": {"accuracy": "correct"},
        "label_key": "answer",
        "answer_key": "answer",
        "ignored_key": "action_ignored",
        "splits": SPLITS,
    }
    # The episodes in progress (see BatchedEnv.state_dict).
    state_attributes = ("question_index", "t", "given_answer")
    # The task of each environment's next episodes, among ``tasks`` (see configure).
    configurable = ("task",)
    # Attributes the gym.make and gym.make_vec adapters expose (env.unwrapped.vocab).
    public_attributes = ("vocab", "decode")
    # reset(options={"item": indices}): the questions these episodes ask.
    reset_options = ("item",)

    def __init__(
        self,
        num_envs: int = 1,
        device: str | torch.device = "cpu",
        render_mode: str | None = None,
        autoreset: bool = True,
        task: int = 1,
        split: str = "train",
        training_stories: int = 1000,
        root: str | os.PathLike | None = None,
        max_sentences: int | None = None,
        max_words: int | None = None,
        tasks: Sequence[int] | None = None,
    ) -> None:
        known = babi.GENERATED_TASKS if root is None else BABI_TASKS
        check_int("task", task)
        if task not in known:
            where = "generated stories (root=None)" if root is None else "bAbI's files"
            more = "; any of 1 to 20 with root=<bAbI folder>" if root is None else ""
            raise ValueError(f"task must be one of {known} for {where}, got {task!r}{more}")
        held = _check_tasks(tasks, int(task), known)
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        check_int("training_stories", training_stories)
        if training_stories not in TRAINING_STORIES:
            raise ValueError(
                f"training_stories must be 1000 or 10000 (bAbI's 1k and 10k training sets, "
                f"counted in questions), got {training_stories!r}"
            )
        if root is not None and not isinstance(root, (str, os.PathLike)):
            raise ValueError(f"root must be None or a folder path, got {root!r}")
        for name, value in (("max_sentences", max_sentences), ("max_words", max_words)):
            if value is not None:
                check_int(name, value)
        self.max_sentences = None if max_sentences is None else int(max_sentences)
        super().__init__(num_envs, device, render_mode, autoreset)
        self.task, self.split, self.training_stories = int(task), split, int(training_stories)
        self.root = None if root is None else os.fspath(root)
        self.tasks = held

        # Both splits of every task held (the spaces fit them all), the chosen split's used.
        splits = {
            k: {s: _story_data(k, s, self.training_stories, self.root) for s in SPLITS}
            for k in held
        }
        both = splits[self.task]
        data = self.data = both[split]
        for k in held:
            if len(splits[k][split]) == 0:
                raise ValueError(f"task {k} split {split!r} holds no questions")
        every = [d for by_split in splits.values() for d in by_split.values()]
        if self.root is None:
            self.vocab = list(babi.VOCABULARY)
        else:
            self.vocab = [PAD, *sorted(set().union(*(d.words() for d in every)))]
        self.word_index = {w: i for i, w in enumerate(self.vocab)}

        longest = max(len(w) for d in every for w in (*d.sentences, *d.questions))
        if max_words is not None and max_words < longest:
            named = f"task {task}" if len(held) == 1 else f"tasks {list(held)}"
            raise ValueError(
                f"max_words={max_words} is shorter than the longest sentence or question of "
                f"{named} ({longest} words); sentences are never cut: use None or >= {longest}"
            )
        self.max_words = longest if max_words is None else int(max_words)

        # The split as tensors, encoded once: the held tasks' questions one task after the
        # other (task k's from question _task_first[k] on), their sentences likewise; one
        # padding row after the sentences keeps the gather of a story with no sentence in
        # range.
        sentence_rows: list[Sequence[str]] = []
        question_rows: list[Sequence[str]] = []
        answers: list[str] = []
        starts, lengths, first, count = [], [], [], []
        for k in held:
            d = splits[k][split]
            start, length = d.story_start + len(sentence_rows), d.story_length
            if self.max_sentences is not None:  # only the most recent max_sentences are shown
                start = start + np.maximum(length - self.max_sentences, 0)
                length = np.minimum(length, self.max_sentences)
            first.append(len(answers))
            count.append(len(d))
            sentence_rows.extend(d.sentences)
            question_rows.extend(d.questions)
            answers.extend(d.answers)
            starts.append(start)
            lengths.append(length)
        sentences = _encode([*sentence_rows, ()], self.word_index, self.max_words)
        start, length = np.concatenate(starts), np.concatenate(lengths)
        as_tensor = functools.partial(torch.tensor, dtype=torch.int64, device=self.device)
        self.sentence_words = as_tensor(sentences)
        self.question_words = as_tensor(_encode(question_rows, self.word_index, self.max_words))
        self.answers = as_tensor([self.word_index[a] for a in answers])
        self.story_start = as_tensor(start)
        self.story_length = as_tensor(length)
        self.n_questions = len(data)
        # Each episode asks one question: the held tasks' questions of the split are its
        # items (item i: question_index i, the tasks one after the other).
        self.num_items = len(answers)
        self.max_episode_steps = int(length.max()) + 1
        # Where each held task's questions lie: task -> slot (-1: not held) -> first, count.
        slots = np.full(max(held) + 1, -1)
        slots[list(held)] = np.arange(len(held))
        self._task_slot = as_tensor(slots)
        self._task_first = as_tensor(first)
        self._task_count = as_tensor(count)

        vocab_size = len(self.vocab)
        self.single_observation_space = spaces.Dict(
            {
                "words": spaces.MultiDiscrete(np.full(self.max_words, vocab_size)),
                "question": spaces.Box(0.0, 1.0, (1,), np.float32),
            }
        )
        self.single_action_space = spaces.Discrete(vocab_size)

        self.question_index = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        self.t = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)
        # The word the agent answered with (0 until the question step), for render.
        self.given_answer = torch.zeros(self.num_envs, dtype=torch.int64, device=self.device)

    def decode(self, words: Any) -> str:
        """A row of word ids (tensor, array or list) as its words joined by spaces, padding
        dropped: ``decode(obs["words"][i])`` is the sentence environment i sees."""
        ids = torch.as_tensor(words).reshape(-1).tolist()
        bad = [i for i in ids if not 0 <= i < len(self.vocab)]
        if bad:
            raise ValueError(f"word ids {bad} are outside the vocabulary [0, {len(self.vocab)})")
        return " ".join(self.vocab[i] for i in ids if i != 0)

    # --- episodes ----------------------------------------------------------------------------
    def _check_configuration(self, values: Mapping[str, torch.Tensor]) -> None:
        task = values["task"]
        held = torch.isin(task, torch.tensor(self.tasks, device=self.device))
        if not bool(held.all()):
            env = int((~held).nonzero()[0, 0])
            raise ValueError(
                f"task must be one of the tasks this StoryQA holds, tasks={list(self.tasks)}, got "
                f"{task[env].item()!r} (environment {env}); build it with tasks=[...] naming "
                "every task to switch among while running"
            )

    def _draw_questions(self, index: torch.Tensor) -> torch.Tensor:
        # A question of each environment's configured task: the same uniform draw, scaled by
        # the number of questions of the task (a single task: as it always drew).
        slot = self._task_slot[self._configured("task")[index]]
        count = self._task_count[slot]
        return self._task_first[slot] + self.rng.integers(index, 1, count)[:, 0]

    def _reset_envs(self, index: torch.Tensor) -> None:
        chosen = self._take_items(index)  # reset(options={"item": ...}): these, this once
        self.question_index[index] = self._draw_questions(index) if chosen is None else chosen
        self.t[index] = 0
        self.given_answer[index] = 0

    def _reset_where(self, mask: torch.Tensor) -> None:
        # Sync-free: draw for every environment and keep the draws where ``mask`` is set.
        torch.where(
            mask, self._draw_questions(self._all), self.question_index, out=self.question_index
        )
        self.t.masked_fill_(mask, 0)
        self.given_answer.masked_fill_(mask, 0)

    def _step(self, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Info]:
        # Tensor operations only: nothing here reads a value on the host.
        asking = self.t >= self.story_length[self.question_index]
        answer = self.answers[self.question_index]
        correct = asking & (action == answer)
        torch.where(asking, action, self.given_answer, out=self.given_answer)
        self.t += 1
        info = {
            "correct": correct,
            "_correct": asking,
            "action_ignored": ~asking,
            # A new tensor (a gather): the finished episode's answer even after autoreset.
            "answer": answer,
            "_answer": asking,
            "prediction": action,
            "_prediction": asking,
        }
        return correct.float(), asking, torch.zeros_like(asking), info

    def _observe(self, index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        q = self.question_index if index is None else self.question_index[index]
        t = self.t if index is None else self.t[index]
        length = self.story_length[q]
        asking = t >= length  # also after the question step, for the final observation
        row = self.story_start[q] + torch.minimum(t, length - 1).clamp(min=0)
        words = torch.where(asking[:, None], self.question_words[q], self.sentence_words[row])
        return {"words": words, "question": asking.float()[:, None]}

    # --- rendering ---------------------------------------------------------------------------
    def render(self, index: int = 0) -> np.ndarray:
        """Environment ``index``'s story so far as text: the last sentences shown, the
        question and the right answer once asked, and the agent's answer once given."""
        from PIL import Image, ImageDraw

        if not 0 <= index < self.num_envs:
            raise ValueError(f"index must lie in [0, {self.num_envs}), got {index}")
        q, t = int(self.question_index[index]), int(self.t[index])
        start, length = int(self.story_start[q]), int(self.story_length[q])
        shown = [self.decode(self.sentence_words[start + i]) for i in range(min(t + 1, length))]
        story = [f"{i + 1}. {s}" for i, s in enumerate(shown)][-(_RENDER_LINES - 3) :]
        asked = []
        if t >= length:
            right = self.vocab[int(self.answers[q])]
            asked = [f"? {self.decode(self.question_words[q])}", f"right answer: {right}"]
        if t > length:
            given = self.vocab[int(self.given_answer[index])]
            asked.append(f"answered: {given} ({'right' if given == right else 'wrong'})")
        image = Image.new("RGB", (_FRAME_WIDTH, _RENDER_LINES * _LINE_HEIGHT + 8), "white")
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(story + asked):
            colour = (0, 0, 0) if i < len(story) else (0, 0, 160)
            draw.text((6, 4 + i * _LINE_HEIGHT), line, fill=colour)
        return np.asarray(image, dtype=np.uint8).copy()
