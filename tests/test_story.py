"""bAbI story question answering: the world generator, the bAbI file reader and
``cogrl/StoryQA-v0``.

The generator's answers are checked by a reader of our own, written here apart from the
generator: it reads a story sentence by sentence, as a person would, and must reach every
answer both from the whole story and from the supporting sentences alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import cogrl.agents
import cogrl.envs  # noqa: F401  (registers the ids)
from cogrl.datasets import babi_data, babi_words, load_babi
from cogrl.envs.memory import babi
from cogrl.envs.memory.story import StoryQA

MOVE_VERBS = {"went", "journeyed", "travelled", "moved"}
GET_VERBS = {"picked", "got", "grabbed", "took"}
DROP_VERBS = {"dropped", "discarded", "put", "left"}
NUMBER_WORDS = ("none", "one", "two", "three")


# --- an independent reader of generated stories ---------------------------------------------


def read(sentences):
    """What a reader knows after ``sentences`` (word tuples): each person's place, each
    object's holder, each object's known place and the history of its known places."""
    place, holder, known = {}, {}, {}
    history: dict[str, list[str]] = {}

    def put(obj, where):
        known[obj] = where
        if not history.setdefault(obj, []) or history[obj][-1] != where:
            history[obj].append(where)

    for words in sentences:
        person, verb = words[0], words[1]
        if verb in MOVE_VERBS:
            place[person] = words[-1]
            for obj, who in holder.items():
                if who == person:
                    put(obj, words[-1])
            continue
        obj = words[words.index("the") + 1]
        assert verb in GET_VERBS | DROP_VERBS, words
        holder[obj] = person if verb in GET_VERBS else None
        if person in place:
            put(obj, place[person])
    return place, holder, known, history


def reader_answer(task, sentences, question):
    """The answer our reader gives to ``question`` (words) after ``sentences``."""
    place, holder, known, history = read(sentences)
    if task == 1:  # where is P
        return place.get(question[2])
    if task == 2:  # where is the O
        return known.get(question[3])
    if task == 3:  # where was the O before the P
        obj, current = question[3], question[-1]
        past = history.get(obj, [])
        if len(past) < 2 or past[-1] != current or past.count(current) != 1:
            return None
        return past[-2]
    if task == 6:  # is P in the X
        if question[1] not in place:
            return None
        return "yes" if place[question[1]] == question[-1] else "no"
    if task == 7:  # how many objects is P carrying
        return NUMBER_WORDS[sum(who == question[4] for who in holder.values())]
    raise AssertionError(task)


# --- the generator ------------------------------------------------------------------------------


@pytest.mark.parametrize("task", babi.GENERATED_TASKS)
def test_every_answer_follows_from_the_story_and_from_its_supporting_facts(task):
    for split in ("train", "test"):
        data = babi.generate(task, split)
        assert len(data) == 1000
        for q in range(len(data)):
            story, question, answer = data.story(q), data.questions[q], data.answers[q]
            assert reader_answer(task, story, question) == answer, (story, question, answer)
            support = data.supporting[q]
            assert list(support) == sorted(set(support)) and support
            facts = [story[i] for i in support]
            assert reader_answer(task, facts, question) == answer, (facts, question, answer)
            if task in (1, 6):  # the single supporting fact is the person's last move
                person = question[2] if task == 1 else question[1]
                moves = [i for i, s in enumerate(story) if s[0] == person]
                assert support == (moves[-1],)
            if task in (2, 3):
                assert len(support) == task


def test_tasks_ask_what_their_names_say():
    one = babi.generate(1, "test")
    assert all(q[:2] == ("where", "is") and len(q) == 3 for q in one.questions)
    assert set(one.answers) == set(babi.PLACES)
    six = babi.generate(6, "test")
    assert set(six.answers) == {"yes", "no"}
    assert 0.4 < six.answers.count("yes") / len(six) < 0.6
    seven = babi.generate(7, "test")
    assert {"none", "one", "two"} <= set(seven.answers) <= set(NUMBER_WORDS)
    three = babi.generate(3, "test")
    assert all(q[:3] == ("where", "was", "the") and "before" in q for q in three.questions)
    # bAbI's story schedules: tasks 1 and 6 ask after every 2 sentences, 5 times.
    assert set(one.story_length.tolist()) == {2, 4, 6, 8, 10}


def _examples(data):
    return {(data.story(q), data.questions[q]) for q in range(len(data))}


@pytest.mark.parametrize("task", babi.GENERATED_TASKS)
def test_training_sets_hold_1k_and_10k_questions_and_no_test_example(task):
    small, large = babi.generate(task, "train", 1000), babi.generate(task, "train", 10000)
    test = babi.generate(task, "test", 10000)  # the test set is one, whatever the training size
    assert (len(small), len(large), len(test)) == (1000, 10000, 1000)
    assert test is babi.generate(task, "test", 1000)
    assert not _examples(test) & _examples(large)
    # The 1k set is the first 1,000 questions of the 10k one.
    for q in (0, 1, 500, 999):
        assert small.story(q) == large.story(q)
        assert (small.questions[q], small.answers[q]) == (large.questions[q], large.answers[q])
    # Every word is in the generator's one vocabulary.
    assert large.words() | test.words() <= set(babi.VOCABULARY)


def test_sets_are_the_same_in_every_process():
    # The first test question of task 1, pinned as generated: the sets must not change
    # between versions and installations.
    assert babi.generate_stories(1, "test")[0][:3] == (
        "John journeyed to the bedroom.",
        "Daniel moved to the hallway.",
        ("Where is John?", "bedroom", (0,)),
    )
    code = (
        "from cogrl.envs.memory import babi\n"
        "for t in babi.GENERATED_TASKS:\n"
        "    print(repr(babi.generate_stories(t, 'test')))\n"
        "    print(repr(babi.generate_stories(t, 'train')))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    here = "".join(
        f"{babi.generate_stories(t, s)!r}\n"
        for t in babi.GENERATED_TASKS
        for s in ("test", "train")
    )
    assert other == here


def test_generator_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"task must be one of the generated tasks.*got 4"):
        babi.generate(4)
    with pytest.raises(ValueError, match="split must be one of.*'valid'"):
        babi.generate(1, "valid")
    with pytest.raises(ValueError, match="training_questions must be one of.*500"):
        babi.generate(1, "train", 500)


# --- the reader of bAbI files -----------------------------------------------------------------

QA1_TRAIN = (
    "1 Mary moved to the bathroom.\n"
    "2 John went to the hallway.\n"
    "3 Where is Mary? \tbathroom\t1\n"
    "4 Daniel went back to the hallway.\n"
    "5 Sandra moved to the garden.\n"
    "6 Where is Daniel? \thallway\t4\n"
    "1 Sandra travelled to the office.\n"
    "2 Where is Sandra? \toffice\t1\n"
)
QA1_TEST = "1 John went to the kitchen.\n2 Where is John?\tkitchen\t1\n"
QA8_TRAIN = (
    "1 Mary got the football there.\n"
    "2 Mary grabbed the apple there.\n"
    "3 What is Mary carrying?\tfootball,apple\t1 2\n"
    "4 Mary dropped the apple.\n"
    "5 What is Mary carrying?\tfootball\t1 2 4\n"
)
QA8_TEST = "1 John moved to the hallway.\n2 What is John carrying?\tnothing\t1\n"


def write_babi(root: Path, folder: str = "en", **files: str) -> Path:
    """Files ``qa{N}_{name}_{split}.txt`` in ``root/folder``, given as name=text."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def babi_root(tmp_path: Path) -> Path:
    write_babi(
        tmp_path,
        "en",
        **{
            "qa1_single-supporting-fact_train": QA1_TRAIN,
            "qa1_single-supporting-fact_test": QA1_TEST,
            "qa8_lists-sets_train": QA8_TRAIN,
            "qa8_lists-sets_test": QA8_TEST,
        },
    )
    # The 10k folder's task 1: one story, to tell the two apart.
    write_babi(
        tmp_path,
        "en-10k",
        **{
            "qa1_single-supporting-fact_train": QA1_TEST,
            "qa1_single-supporting-fact_test": QA1_TEST,
        },
    )
    return tmp_path


def test_load_babi_reads_stories_questions_and_supporting_facts(babi_root: Path):
    data = load_babi(babi_root, 1, "train")
    assert len(data) == 3
    # Sentences are stored once per story; the story of a question is its sentences before
    # it (questions are no sentences), and the numbering restarts with each story.
    assert data.sentences == (
        ("mary", "moved", "to", "the", "bathroom"),
        ("john", "went", "to", "the", "hallway"),
        ("daniel", "went", "back", "to", "the", "hallway"),
        ("sandra", "moved", "to", "the", "garden"),
        ("sandra", "travelled", "to", "the", "office"),
    )
    assert data.story_start.tolist() == [0, 0, 4]
    assert data.story_length.tolist() == [2, 4, 1]
    assert data.questions == (
        ("where", "is", "mary"),
        ("where", "is", "daniel"),
        ("where", "is", "sandra"),
    )
    assert data.answers == ("bathroom", "hallway", "office")
    # Line IDs become positions among the story's sentences: line 4 is the third sentence.
    assert data.supporting == ((0,), (2,), (0,))
    assert data.story(1)[2] == ("daniel", "went", "back", "to", "the", "hallway")


def test_load_babi_takes_the_top_folder_or_a_language_folder(babi_root: Path):
    top = load_babi(babi_root, 1, "train", "1k")
    assert load_babi(babi_root / "en", 1, "train", "1k").answers == top.answers
    assert load_babi(babi_root, 1, "train", "10k").answers == ("kitchen",)
    assert load_babi(babi_root / "en-10k", 1, "train", "10k").answers == ("kitchen",)
    with pytest.raises(ValueError, match=r"en-10k holds bAbI's 10k training sets.*'1k'"):
        load_babi(babi_root / "en-10k", 1, "train", "1k")
    # List answers (tasks 8, 19) stay one string.
    assert load_babi(babi_root, 8, "train").answers == ("football,apple", "football")


def test_load_babi_names_what_is_missing(tmp_path: Path, babi_root: Path):
    with pytest.raises(FileNotFoundError, match=r"bAbI folder .*nowhere does not exist"):
        load_babi(tmp_path / "nowhere", 1)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no folder en-10k/ .*10k"):
        load_babi(tmp_path / "empty", 1, "train", "10k")
    with pytest.raises(FileNotFoundError, match=r"no bAbI file qa2_\*_train\.txt in .*en"):
        load_babi(babi_root, 2, "train")
    with pytest.raises(ValueError, match="task must be a bAbI task number 1 to 20, got 21"):
        load_babi(babi_root, 21)
    with pytest.raises(ValueError, match="training must be one of"):
        load_babi(babi_root, 1, "train", "5k")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 A b.\n3 C d.\n", r"qa5_x_train\.txt:2: line number 3 follows 1; expected 2"),
        ("2 A b.\n", r":1: line number 2 follows nothing"),
        ("1 A b.\n2 Where?\tyes\t2\n", r":2: supporting ID '2' .* not the number of a sentence"),
        ("1 A b.\n2 Where?\t \t1\n", r":2: question 'Where\?' has no answer"),
        ("1 A b.\n2 Where?\tyes\t1\textra\n", r":2: a question line has 4 tab-separated"),
        ("one A b.\n", r":1: expected a line number"),
        ("1 A b.\n2 \tbathroom\t1\n", r":2: question '' has no words"),
        ("1 ?\n", r":1: sentence '\?' has no words"),
        ("1 " + "word " * 100_000 + "\n", r":1: sentence 'word word .*100,000 words; at most 100"),
        ("".join(f"{i} A b.\n" for i in range(1, 1002)), r":1001: the story has more than 1000"),
        ("", r"holds no bAbI lines"),
    ],
)
def test_load_babi_names_the_broken_line(tmp_path: Path, text: str, message: str):
    write_babi(tmp_path, "en", qa5_x_train=text)
    with pytest.raises(ValueError, match=message):
        load_babi(tmp_path, 5, "train")


@pytest.mark.parametrize("task", [2, 7])
def test_generated_stories_written_as_babi_files_read_back_the_same(tmp_path: Path, task: int):
    stories = babi.generate_stories(task, "test")
    write_babi(tmp_path, "en", **{f"qa{task}_generated_test": babi.babi_text(stories)})
    read_back, generated = load_babi(tmp_path, task, "test"), babi.generate(task, "test")
    assert read_back.sentences == generated.sentences
    assert read_back.questions == generated.questions
    assert read_back.answers == generated.answers
    assert read_back.supporting == generated.supporting
    assert np.array_equal(read_back.story_start, generated.story_start)
    assert np.array_equal(read_back.story_length, generated.story_length)


def test_babi_data_rejects_what_it_cannot_hold():
    assert babi_words("Where is Mary? ") == ("where", "is", "mary")
    with pytest.raises(ValueError, match=r"supporting position\(s\) \[1\].*0 to 0"):
        babi_data(1, [["Mary went home.", ("Where is Mary?", "home", [1])]])
    with pytest.raises(ValueError, match="answer 'the garden'; expected one"):
        babi_data(1, [["Mary went home.", ("Where is Mary?", "the garden", [0])]])
    with pytest.raises(ValueError, match="sentence '...' has no words"):
        babi_data(1, [["..."]])


# --- the environment ----------------------------------------------------------------------------


def run_episode(core: StoryQA, env: int, answer: int, seed: int = 3):
    """Reset ``core`` with ``seed`` and step environment ``env`` through its episode,
    always answering ``answer`` (the others answer 0): the decoded observations with their
    question flags, the rewards, the steps taken and the last info."""
    obs, _ = core.reset(seed=seed)
    seen, rewards = [], []
    for steps in range(1, core.max_episode_steps + 1):
        seen.append((core.decode(obs["words"][env]), float(obs["question"][env, 0])))
        action = torch.zeros(core.num_envs, dtype=torch.int64)
        action[env] = answer
        obs, reward, terminated, truncated, info = core.step(action)
        rewards.append(float(reward[env]))
        assert not truncated.any()
        if terminated[env]:
            return seen, rewards, steps, info
    raise AssertionError("the episode did not end by max_episode_steps")


def test_an_episode_is_the_story_so_far_then_the_question():
    core = StoryQA(num_envs=3, task=2)
    q = None
    for env in range(3):
        core.reset(seed=3)
        q = int(core.question_index[env])
        right = core.vocab.index(core.data.answers[q])
        story, question = core.data.story(q), core.data.questions[q]
        seen, rewards, steps, info = run_episode(core, env, right)
        # One sentence per step, in order, then the question: L + 1 steps.
        assert steps == len(story) + 1
        assert seen == [(" ".join(s), 0.0) for s in story] + [(" ".join(question), 1.0)]
        # Reward 1 for the right word, at the question step only (the same word at story
        # steps is ignored).
        assert rewards == [0.0] * len(story) + [1.0]
        assert bool(info["_correct"][env]) and bool(info["correct"][env])
        assert int(info["answer"][env]) == right


def test_a_wrong_answer_earns_nothing_and_ends_the_episode():
    core = StoryQA(num_envs=2, task=6)
    core.reset(seed=0)
    q = int(core.question_index[1])
    wrong = core.vocab.index("no" if core.data.answers[q] == "yes" else "yes")
    _, rewards, steps, info = run_episode(core, 1, wrong, seed=0)
    assert rewards == [0.0] * steps and steps == int(core.story_length[q]) + 1
    assert bool(info["_correct"][1]) and not bool(info["correct"][1])
    assert int(info["prediction"][1]) == wrong


def test_observation_layout_and_spaces():
    core = StoryQA(num_envs=4, task=3)
    test = StoryQA(task=3, split="test")
    vocab_size = len(babi.VOCABULARY)
    assert core.vocab == list(babi.VOCABULARY) == test.vocab and core.vocab[0] == "<pad>"
    assert core.single_observation_space == test.single_observation_space
    assert core.single_action_space == gym.spaces.Discrete(vocab_size)
    words = core.single_observation_space["words"]
    assert isinstance(words, gym.spaces.MultiDiscrete)
    # "where was the football before the kitchen" is the longest line of task 3.
    assert words.shape == (7,) and (words.nvec == vocab_size).all()
    assert core.single_observation_space["question"] == gym.spaces.Box(0, 1, (1,), np.float32)
    obs, _ = core.reset(seed=1)
    assert obs["words"].dtype == torch.int64 and obs["words"].shape == (4, 7)
    assert obs["question"].dtype == torch.float32 and obs["question"].shape == (4, 1)
    # Words first, padding (0) after them.
    for row in obs["words"]:
        n = int((row != 0).sum())
        assert (row[:n] != 0).all() and (row[n:] == 0).all()
    assert core.max_episode_steps == int(core.data.story_length.max()) + 1
    assert StoryQA(task=3, max_words=9).single_observation_space["words"].shape == (9,)
    assert core.metadata["episode_metrics"] == {"accuracy": "correct"}
    assert core.metadata["label_key"] == "answer"
    assert core.metadata["splits"] == ("train", "test")


def test_max_sentences_shows_only_the_most_recent_sentences():
    full, short = StoryQA(task=2), StoryQA(task=2, max_sentences=2)
    assert short.max_episode_steps == 3 < full.max_episode_steps
    for seed in range(5):
        full.reset(seed=seed)
        q = int(full.question_index[0])
        story = full.data.story(q)
        assert len(story) > 2  # task 2 asks after 3 or more sentences
        short.reset(seed=seed)
        assert int(short.question_index[0]) == q  # the same question drawn
        seen, _, steps, _ = run_episode(short, 0, 0, seed=seed)
        assert steps == 3
        assert seen == [(" ".join(s), 0.0) for s in story[-2:]] + [
            (" ".join(full.data.questions[q]), 1.0)
        ]


def test_vocabulary_through_gym_make_decodes_observations():
    env = gym.make("cogrl/StoryQA-v0", task=1)
    vocab = env.unwrapped.vocab
    obs, _ = env.reset(seed=5)
    core = env.unwrapped.core
    q = int(core.question_index[0])
    sentence = " ".join(vocab[i] for i in obs["words"] if i != 0)
    assert sentence == " ".join(core.data.story(q)[0])
    assert env.unwrapped.decode(obs["words"]) == sentence
    vector = gym.make_vec("cogrl/StoryQA-v0", num_envs=2, vectorization_mode="vector_entry_point")
    assert vector.unwrapped.vocab == vocab
    with pytest.raises(AttributeError, match="no attribute 'data'"):
        env.unwrapped.data  # noqa: B018 (only declared attributes pass through)


def test_real_files_mode(babi_root: Path):
    core = StoryQA(num_envs=2, task=8, root=babi_root)
    test = StoryQA(task=8, split="test", root=str(babi_root))
    # Every word and answer of the task's train and test files, sorted, after padding.
    words = set()
    for text in (QA8_TRAIN, QA8_TEST):
        for line in text.splitlines():
            sentence, *answer = line.split(" ", 1)[1].split("\t")
            words.update(babi_words(sentence))
            words.update(answer[:1])
    assert core.vocab == ["<pad>", *sorted(words)] == test.vocab
    assert "football,apple" in core.vocab  # a list answer is one action
    assert core.max_words == 5  # "mary got the football there", "john moved to the hallway"
    assert core.max_episode_steps == 4  # the 3 sentences before the second question, + 1
    assert len(test.data) == 1 and test.max_episode_steps == 2
    right = core.vocab.index("football,apple")
    for seed in range(20):  # until the first question is drawn
        core.reset(seed=seed)
        if int(core.question_index[0]) == 0:
            break
    seen, rewards, steps, _ = run_episode(core, 0, right, seed=seed)
    assert seen == [
        ("mary got the football there", 0.0),
        ("mary grabbed the apple there", 0.0),
        ("what is mary carrying", 1.0),
    ]
    assert rewards == [0.0, 0.0, 1.0]
    # training_stories picks the folder: en-10k holds only task 1 here.
    with pytest.raises(FileNotFoundError, match=r"qa8_\*_train\.txt in .*en-10k"):
        StoryQA(task=8, root=babi_root, training_stories=10000)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": 4}, r"task must be one of \(1, 2, 3, 6, 7\) for generated .*got 4"),
        ({"task": 21, "root": "."}, r"task must be one of .*bAbI's files, got 21"),
        ({"task": True}, "task must be an int >= 1, got True"),
        ({"split": "valid"}, "split must be one of .*'valid'"),
        ({"training_stories": 500}, "training_stories must be 1000 or 10000.*500"),
        ({"training_stories": 1000.0}, "training_stories must be an int >= 1, got 1000.0"),
        ({"task": 1.0}, "task must be an int >= 1, got 1.0"),
        ({"max_sentences": 0}, "max_sentences must be an int >= 1, got 0"),
        ({"max_words": 2.5}, "max_words must be an int >= 1, got 2.5"),
        ({"task": 3, "max_words": 6}, r"max_words=6 is shorter than .* task 3 \(7 words\)"),
        ({"root": 12}, "root must be None or a folder path, got 12"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StoryQA(**kwargs)


def test_a_missing_folder_is_named(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="bAbI folder .*absent does not exist"):
        gym.make("cogrl/StoryQA-v0", task=5, root=tmp_path / "absent")


def test_render_shows_the_story_so_far():
    core = StoryQA(task=1, render_mode="rgb_array")
    core.reset(seed=0)
    first = core.render()
    assert first.dtype == np.uint8 and first.ndim == 3 and first.shape[2] == 3
    assert (first < 255).any()  # some text is drawn
    core.step(torch.zeros(1, dtype=torch.int64))
    assert core.render().shape == first.shape and not np.array_equal(core.render(), first)
    with pytest.raises(ValueError, match="index must lie in"):
        core.render(1)


def test_evaluating_on_bAbI_files_with_unseen_words_is_a_clear_error(tmp_path, babi_root):
    agent = cogrl.agents.make(
        "ppo", "cogrl/StoryQA-v0", env_kwargs={"root": str(babi_root), "task": 1},
        num_envs=2, n_steps=8, batch_size=16, device="cpu", seed=0,
    )  # fmt: skip
    other = write_babi(
        tmp_path / "other",
        "en",
        qa1_single_train=QA1_TRAIN,
        # Words the run never saw: its vocabulary grows.
        qa1_single_test=QA1_TEST + "1 Bill went to the attic.\n2 Where is Bill?\tattic\t1\n",
    )
    with pytest.raises(ValueError, match=r"has observation space .* but this agent was built for"):
        cogrl.agents.evaluate(agent, episodes=1, root=str(other))
