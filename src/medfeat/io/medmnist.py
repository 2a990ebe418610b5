"""Facts about the MedMNIST v2 / MedMNIST+ datasets: where the official files are, their MD5
sums, class names, the official splits and the published test scores.

Source: ``medmnist/info.py`` of the MedMNIST package, version 3.0.2
(https://github.com/MedMNIST/MedMNIST, the ``INFO`` table), whose files are hosted on Zenodo record
10519652 (https://zenodo.org/records/10519652). The 28×28 MD5 sums equal those of the earlier
record 6496656 (medmnist 2.1.0) except for OrganAMNIST, OrganCMNIST and OrganSMNIST, which were
re-released. Datasets: Yang et al., "MedMNIST v2", Scientific Data 10:41 (2023), CC BY 4.0
(DermaMNIST: CC BY-NC 4.0).
"""

__all__ = ["URL", "SIZES", "INFO", "PUBLISHED", "PUBLISHED_PEERS", "OFFICIAL_CLASS_COUNTS",
           "file_stem"]

URL = "https://zenodo.org/records/10519652/files/{stem}.npz?download=1"
SIZES = (28, 64, 128, 224)

_ORGANS = ("bladder", "femur-left", "femur-right", "heart", "kidney-left", "kidney-right", "liver",
           "lung-left", "lung-right", "pancreas", "spleen")

#: name → (MD5 for 28, 64, 128, 224), class names, channels, task, licence
INFO = {
    "pathmnist": (
        ("a8b06965200029087d5bd730944a56c1", "55aa9c1e0525abe5a6b9d8343a507616",
         "ac42d08fb904d92c244187169d1fd1d9", "2c51a510bcdc9cf8ddb2af93af1eadec"),
        ("adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
         "normal colon mucosa", "cancer-associated stroma",
         "colorectal adenocarcinoma epithelium"), 3, "multi-class", "CC BY 4.0"),
    "chestmnist": (
        ("02c8a6516a18b556561a56cbdd36c4a8", "9de6cd0b934ebb5b7426cfba5efbae16",
         "db107e5590b27930b62dbaf558aebee3", "45bd33e6f06c3e8cdb481c74a89152aa"),
        ("atelectasis", "cardiomegaly", "effusion", "infiltration", "mass", "nodule", "pneumonia",
         "pneumothorax", "consolidation", "edema", "emphysema", "fibrosis", "pleural", "hernia"),
        1, "multi-label, binary-class", "CC BY 4.0"),
    "dermamnist": (
        ("0744692d530f8e62ec473284d019b0c7", "b70a2f5635c6199aeaa28c31d7202e1f",
         "2defd784463fa5243564e855ed717de1", "8974907d8e169bef5f5b96bc506ae45d"),
        ("actinic keratoses and intraepithelial carcinoma", "basal cell carcinoma",
         "benign keratosis-like lesions", "dermatofibroma", "melanoma", "melanocytic nevi",
         "vascular lesions"), 3, "multi-class", "CC BY-NC 4.0"),
    "octmnist": (
        ("c68d92d5b585d8d81f7112f81e2d0842", "e229e9440236b774d9f0dfef9d07bdaf",
         "0a97e76651ace45c5d943ee3f65b63ae", "abc493b6d529d5de7569faaef2773ba3"),
        ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"), 1,
        "multi-class", "CC BY 4.0"),
    "pneumoniamnist": (
        ("28209eda62fecd6e6a2d98b1501bb15f", "8f4eceb4ccffa70c672198ea285246c6",
         "05b46931834c231683c68f40c47b2971", "d6a3c71de1b945ea11211b03746c1fe1"),
        ("normal", "pneumonia"), 1, "binary-class", "CC BY 4.0"),
    "retinamnist": (
        ("bd4c0672f1bba3e3a89f0e4e876791e4", "afda852cc34dcda56f86ad2b2457dbcc",
         "e48e916a24454daf90583d4e6efb1a18", "eae7e3b6f3fcbda4ae613ebdcbe35348"),
        ("0", "1", "2", "3", "4"), 3, "ordinal-regression", "CC BY 4.0"),
    "breastmnist": (
        ("750601b1f35ba3300ea97c75c52ff8f6", "742edef2a1fd1524b2efff4bd7ba9364",
         "363e4b3f8d712e9b5de15470a2aaadf1", "b56378a6eefa9fed602bb16d192d4c8b"),
        ("malignant", "normal, benign"), 1, "binary-class", "CC BY 4.0"),
    "bloodmnist": (
        ("7053d0359d879ad8a5505303e11de1dc", "2b94928a2ae4916078ca51e05b6b800b",
         "adace1e0ed228fccda1f39692059dd4c", "b718ff6835fcbdb22ba9eacccd7b2601"),
        ("basophil", "eosinophil", "erythroblast",
         "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)", "lymphocyte",
         "monocyte", "neutrophil", "platelet"), 3, "multi-class", "CC BY 4.0"),
    "tissuemnist": (
        ("ebe78ee8b05294063de985d821c1c34b", "123ece2eba09d0aa5d698fda57103344",
         "61b955355d7425a89687b06cca3ce0c2", "b077128c4a949f0a4eb01517f9037b9c"),
        ("Collecting Duct, Connecting Tubule", "Distal Convoluted Tubule",
         "Glomerular endothelial cells", "Interstitial endothelial cells", "Leukocytes",
         "Podocytes", "Proximal Tubule Segments", "Thick Ascending Limb"), 1, "multi-class",
        "CC BY 4.0"),
    "organamnist": (
        ("68e3f8846a6bd62f0c9bf841c0d9eacc", "2dcccc29b88e6da5a01161ef20cda288",
         "eeae80d0a227a8d099027e1b3cfd3b60", "50747347e05c87dd3aaf92c49f9f3170"),
        _ORGANS, 1, "multi-class", "CC BY 4.0"),
    "organcmnist": (
        ("b9ceb9546e10131b32923c5bbeaea2b1", "3ce34a8724ea6f548e6db4744d03b6a9",
         "773c1f009daa3fe5d9a2a201b2a7ed94", "050f5e875dc056f6768abf94ec9995d1"),
        _ORGANS, 1, "multi-class", "CC BY 4.0"),
    "organsmnist": (
        ("9ab87b696fb54e2a387ebe992d6ed5f1", "53a6d115339d874c25e309a994ff46d3",
         "ded0c5fa01a95dc4978b956f613e9b8e", "b354719e553fbbb2513d5533f52a4cb1"),
        _ORGANS, 1, "multi-class", "CC BY 4.0"),
}


def file_stem(name, size):
    """``pneumoniamnist`` for 28×28, ``pneumoniamnist_64`` for the MedMNIST+ sizes.

    Examples
    --------
    >>> file_stem("pneumoniamnist", 28), file_stem("pneumoniamnist", 64)
    ('pneumoniamnist', 'pneumoniamnist_64')
    """
    return name if size == 28 else f"{name}_{size}"


#: Published test scores of MedMNIST v2 (Yang et al., Scientific Data 10:41, 2023; Table 3 for
#: the 2-D sets at 28 x 28, Table 4 for the 3-D ones), model -> (AUC, ACC), for the sets this
#: project measures itself against. Reports quote them beside a run on a file of that name.
PUBLISHED = {
    "pneumoniamnist": {
        "ResNet-18 (28)": (0.944, 0.854), "ResNet-18 (224)": (0.956, 0.864),
        "ResNet-50 (28)": (0.948, 0.854), "ResNet-50 (224)": (0.962, 0.884),
        "auto-sklearn": (0.942, 0.855), "AutoKeras": (0.947, 0.878),
        "Google AutoML Vision": (0.991, 0.946),
    },
    "breastmnist": {
        "ResNet-18 (28)": (0.901, 0.863), "ResNet-18 (224)": (0.891, 0.833),
        "ResNet-50 (28)": (0.857, 0.812), "ResNet-50 (224)": (0.866, 0.842),
        "auto-sklearn": (0.836, 0.803), "AutoKeras": (0.871, 0.831),
        "Google AutoML Vision": (0.919, 0.861),
    },
    "retinamnist": {
        "ResNet-18 (28)": (0.717, 0.524), "ResNet-18 (224)": (0.710, 0.493),
        "ResNet-50 (28)": (0.726, 0.528), "ResNet-50 (224)": (0.716, 0.511),
        "auto-sklearn": (0.690, 0.515), "AutoKeras": (0.719, 0.503),
        "Google AutoML Vision": (0.750, 0.531),
    },
    # the 3-D rows could not be re-read from the paper where they were entered: check them
    # against its Table 4 before quoting them
    "adrenalmnist3d": {
        "ResNet-18 + 2.5D": (0.718, 0.772), "ResNet-18 + 3D": (0.827, 0.721),
        "ResNet-18 + ACS": (0.839, 0.754), "ResNet-50 + 2.5D": (0.735, 0.751),
        "ResNet-50 + 3D": (0.828, 0.745), "ResNet-50 + ACS": (0.818, 0.758),
        "auto-sklearn": (0.828, 0.802), "AutoKeras": (0.804, 0.705),
    },
}
#: Which published rows each road is held against: the deep road against the ResNet-18 of the
#: same input, the classical road against auto-sklearn (features and scikit-learn models).
PUBLISHED_PEERS = {"deep": ("ResNet-18 (28)", "ResNet-18 + 3D"), "classical": ("auto-sklearn",)}

#: Images per class in the official splits, (class 0, class 1, ...), where a report checks a copy
#: against them (MedMNIST v2, Yang et al., 2023, Table 1; PneumoniaMNIST: normal, pneumonia).
OFFICIAL_CLASS_COUNTS = {
    "pneumoniamnist": {"train": (1214, 3494), "val": (135, 389), "test": (234, 390)},
}
